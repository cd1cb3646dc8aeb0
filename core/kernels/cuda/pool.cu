// Max-pooling over (planes, H, W) with the index of the chosen element, and its backward.
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/kernels.h"

namespace kiln::cuda {

namespace {

template <typename T>
__global__ void pool_fwd_kernel(const T* __restrict__ x, T* __restrict__ y,
                                int32_t* __restrict__ arg, int64_t planes, int64_t h, int64_t w,
                                int64_t ho, int64_t wo, int64_t k, int64_t s) {
  const int64_t total = planes * ho * wo;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t pl = i / (ho * wo), o = i % (ho * wo), oh = o / wo, ow = o % wo;
    const T* in = x + pl * h * w;
    int32_t best_i = static_cast<int32_t>(oh * s * w + ow * s);
    float best = to_f32(in[best_i]);
    for (int64_t a = 0; a < k; ++a) {
      for (int64_t b = 0; b < k; ++b) {
        const int32_t at = static_cast<int32_t>((oh * s + a) * w + ow * s + b);
        const float v = to_f32(in[at]);
        // Same rule as the CPU: larger or NaN replaces, scanning row by row.
        if ((a || b) && (v > best || v != v)) {
          best = v;
          best_i = at;
        }
      }
    }
    y[i] = from_f32<T>(best);
    arg[i] = best_i;
  }
}

template <typename T>
__global__ void zero_kernel(T* __restrict__ p, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    p[i] = from_f32<T>(0.f);
}

// Atomic adds: an input element may be the maximum of several windows when they overlap, and
// backward is not told the kernel and stride that would say whether they do. Contention is rare
// (a window's maximum is usually its own), so the atomics cost little over plain stores.
template <typename T>
__global__ void pool_bwd_kernel(const T* __restrict__ dy, const int32_t* __restrict__ arg,
                                T* __restrict__ dx, int64_t planes, int64_t hw, int64_t ohw) {
  const int64_t total = planes * ohw;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    atomicAdd(dx + (i / ohw) * hw + arg[i], dy[i]);
  }
}

}  // namespace

void maxpool2d_forward(DType dt, const void* x, void* y, int32_t* argmax, int64_t planes, int64_t h,
                       int64_t w, int64_t ho, int64_t wo, int64_t k, int64_t stride,
                       cudaStream_t s) {
  const int64_t total = planes * ho * wo;
  if (total == 0) return;
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    pool_fwd_kernel<T><<<blocks_for(total), kThreads, 0, s>>>(
        static_cast<const T*>(x), static_cast<T*>(y), argmax, planes, h, w, ho, wo, k, stride);
  });
}

void maxpool2d_backward(DType dt, const void* dy, const int32_t* argmax, void* dx, int64_t planes,
                        int64_t hw, int64_t ohw, cudaStream_t s) {
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    if (planes * hw > 0) {
      zero_kernel<T><<<blocks_for(planes * hw), kThreads, 0, s>>>(static_cast<T*>(dx), planes * hw);
    }
    if (planes * ohw > 0) {
      pool_bwd_kernel<T><<<blocks_for(planes * ohw), kThreads, 0, s>>>(
          static_cast<const T*>(dy), argmax, static_cast<T*>(dx), planes, hw, ohw);
    }
  });
}

}  // namespace kiln::cuda
