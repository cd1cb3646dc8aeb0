// Reductions over flat buffers: sum of squares (f64 accumulation) and a non-finite flag.
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/kernels.h"

namespace kiln::cuda {

namespace {

template <typename T>
__global__ void sumsq_kernel(const T* __restrict__ x, int64_t n, double* __restrict__ out) {
  __shared__ double scratch[32];
  double acc = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double v = to_f32(x[i]);
    acc += v * v;
  }
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) atomicAdd(out, acc);
}

template <typename T>
__global__ void nonfinite_kernel(const T* __restrict__ x, int64_t n, int32_t* __restrict__ flag) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  bool bad = false;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    bad |= !isfinite(to_f32(x[i]));
  }
  if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) *flag = 1;
}

unsigned reduce_blocks(int64_t n) {
  const unsigned b = blocks_for(n, 8);
  return b > 1024 ? 1024 : b;
}

}  // namespace

void sum_squares(DType dt, const void* x, int64_t n, double* out, cudaStream_t s) {
  if (n == 0) return;
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    sumsq_kernel<T><<<reduce_blocks(n), kThreads, 0, s>>>(static_cast<const T*>(x), n, out);
  });
}

void find_nonfinite(DType dt, const void* x, int64_t n, int32_t* flag, cudaStream_t s) {
  if (n == 0) return;
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    nonfinite_kernel<T><<<reduce_blocks(n), kThreads, 0, s>>>(static_cast<const T*>(x), n, flag);
  });
}

}  // namespace kiln::cuda
