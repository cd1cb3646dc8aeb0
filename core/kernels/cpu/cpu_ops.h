// The CPU kernels: the reference every other backend is tested against, and fast in their own
// right — GEMM through OpenBLAS, the rest vectorisable loops over contiguous memory spread over
// the rank's threads with OpenMP. f32 and f64 (the latter for finite-difference checks).
// Not thread-safe: one CpuOps serves one thread at a time (it owns scratch memory).
#pragma once

#include <vector>

#include "core/ops.h"
#include "core/ops_check.h"

namespace kiln {

class CpuOps final : public Ops {
 public:
  void matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, float alpha,
              float beta) override;
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
  void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, Tensor& mean,
                         Tensor& rstd, float eps) override;
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
  // Scratch for im2col, attention scores and per-thread partial sums; grows to the largest
  // request and is reused (no allocation per step).
  template <typename T>
  T* scratch(size_t elems);
  std::vector<double> scratch_;  // double-sized slots fit either f32 or f64 elements
};

template <typename T>
T* CpuOps::scratch(size_t elems) {
  size_t slots = (elems * sizeof(T) + sizeof(double) - 1) / sizeof(double);
  if (scratch_.size() < slots) scratch_.resize(slots);
  return reinterpret_cast<T*>(scratch_.data());
}

// Helpers shared by the CPU kernel files. Argument checks are core/ops_check.h's, shared with
// every other backend.
namespace cpu {
// c (m, n) = alpha * op(a) @ op(b) + beta * c on row-major operands with leading dimensions,
// through OpenBLAS (single-threaded when called inside an OpenMP parallel region). T: float or
// double.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);
}  // namespace cpu

}  // namespace kiln

// Runs the statement with T bound to the tensor's element type (f32 or f64).
#define KILN_FLOAT_CALL(t, what, ...)                        \
  do {                                                       \
    ::kiln::check_kernel_dtype(t, what, ::kiln::kCpuFloats); \
    if ((t).dtype() == DType::f32) {                         \
      using T = float;                                       \
      __VA_ARGS__;                                           \
    } else {                                                 \
      using T = double;                                      \
      __VA_ARGS__;                                           \
    }                                                        \
  } while (0)
