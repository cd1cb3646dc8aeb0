// 2-D convolution forward and backward through cuDNN (NCHW), algorithms chosen by cuDNN's
// heuristics once per shape. Filter gradients of 16-bit convolutions are computed in the
// operand type and accumulated into the f32 gradient buffer.
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <memory>
#include <tuple>

#include "core/ops.h"
#include "core/ops_check.h"

namespace kiln::cuda {

class ConvRunner {
 public:
  ConvRunner();
  ~ConvRunner();
  ConvRunner(const ConvRunner&) = delete;
  ConvRunner& operator=(const ConvRunner&) = delete;

  // y = conv(x, w) (no bias). `s` is the validated geometry (check_conv2d): descriptors are
  // built from it, not from y's shape, which need only have the right element count.
  void forward(const Tensor& x, const Tensor& w, Tensor& y, const ConvShape& s,
               const Conv2dParams& p, cudaStream_t stream);
  // dw += dL/dw (into an f32 dw through a 16-bit temporary), dx = dL/dx when dx is non-null.
  void backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                const ConvShape& s, const Conv2dParams& p, cudaStream_t stream);

 private:
  struct Plan;
  Plan& plan(DType dtype, const ConvShape& s, const Conv2dParams& p);
  void* workspace(size_t bytes);

  cudnnHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  void* dw_tmp_ = nullptr;
  size_t dw_tmp_bytes_ = 0;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         int64_t, int>;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace kiln::cuda
