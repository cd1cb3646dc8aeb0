// The CUDA kernels behind the Ops interface: GEMMs through cuBLASLt, convolutions through cuDNN,
// Kiln's own kernels (kernels.h) for the rest. Float tensors are f32, bf16 or f16; parameter
// gradients (dw, db) may be f32 while the operands are 16-bit (mixed precision).
// Everything is queued on the device's compute stream; methods that return a value
// (sum_squares, all_finite) wait for it.
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "core/kernels/cuda/cublaslt_gemm.h"
#include "core/kernels/cuda/cudnn_conv.h"
#include "core/ops.h"

namespace kiln {

class CudaDevice;

class CudaOps final : public Ops {
 public:
  CudaOps(CudaDevice& device, cudaStream_t stream);
  ~CudaOps() override;

  void matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
              float alpha, float beta) override;
  void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) override;
  void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                       Tensor& db) override;
  void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y,
                      const Conv2dParams& p) override;
  void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                       Tensor& db, const Conv2dParams& p) override;
  void maxpool2d_forward(const Tensor& x, Tensor& y, Tensor& argmax, int64_t kernel,
                         int64_t stride) override;
  void maxpool2d_backward(const Tensor& dy, const Tensor& argmax, Tensor& dx) override;
  void relu_forward(const Tensor& x, Tensor& y) override;
  void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) override;
  void gelu_forward(const Tensor& x, Tensor& y) override;
  void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) override;
  void dropout_forward(const Tensor& x, Tensor& y, Tensor& mask, float p,
                       const DropoutKey& key) override;
  void dropout_backward(const Tensor& dy, const Tensor& mask, Tensor& dx, float p) override;
  void softmax_xent(const Tensor& logits, const Tensor& labels, Tensor* dlogits, float grad_scale,
                    Tensor& stats) override;
  void embedding_forward(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                         Tensor& y) override;
  void embedding_backward(const Tensor& tokens, const Tensor& dy, Tensor& dwte,
                          Tensor& dwpe) override;
  void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y,
                         Tensor& mean, Tensor& rstd, float eps) override;
  void layernorm_backward(const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                          const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& db,
                          bool accumulate_dx) override;
  void attention_forward(const Tensor& qkv, Tensor& out, Tensor& lse, int64_t n_head) override;
  void attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                          const Tensor& dout, Tensor& dqkv, int64_t n_head) override;
  void add(const Tensor& a, const Tensor& b, Tensor& y) override;
  void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                  const AdamWArgs& args) override;
  void sgd_step(Tensor& param, const Tensor& grad, Tensor& buf, const SgdArgs& args) override;
  double sum_squares(const Tensor& x) override;
  void scale(Tensor& x, double alpha) override;
  bool all_finite(const Tensor& x) override;
  void cast(const Tensor& src, Tensor& dst, bool accumulate) override;

 private:
  CudaDevice& device_;
  cudaStream_t stream_;
  cuda::GemmRunner gemm_;
  cuda::ConvRunner conv_;
  double* scalars_ = nullptr;       // device f64[2] for reductions
  double* host_scalars_ = nullptr;  // pinned copy
  int32_t* flag_ = nullptr;         // device i32[1]
  float* kv_acc_ = nullptr;         // attention backward's f32 key/value gradient scratch
  size_t kv_acc_elems_ = 0;
};

}  // namespace kiln
