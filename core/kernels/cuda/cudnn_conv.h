// 2-D convolution forward and backward through cuDNN (NCHW), algorithms chosen by cuDNN's
// heuristics once per shape. Filter gradients of 16-bit convolutions are computed in the
// operand type and accumulated into the f32 gradient buffer.
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>

#include <map>
#include <tuple>

#include "core/ops.h"

namespace kiln::cuda {

class ConvRunner {
 public:
  ConvRunner();
  ~ConvRunner();
  ConvRunner(const ConvRunner&) = delete;
  ConvRunner& operator=(const ConvRunner&) = delete;

  // y = conv(x, w) (no bias).
  void forward(const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p,
               cudaStream_t stream);
  // dw (+)= dL/dw (f32 accumulation), dx = dL/dx when dx is non-null.
  void backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                const Conv2dParams& p, cudaStream_t stream);

 private:
  struct Plan;
  Plan& plan(const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dParams& p);
  void* workspace(size_t bytes);

  cudnnHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  void* dw_tmp_ = nullptr;
  size_t dw_tmp_bytes_ = 0;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         int64_t, int>;
  std::map<Key, Plan*> plans_;
};

}  // namespace kiln::cuda
