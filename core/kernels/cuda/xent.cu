// Softmax cross-entropy fused with its gradient: one block per row, f32 math, statistics
// (loss sum, correct rows) accumulated in f64.
#include <cfloat>

#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/kernels.h"

namespace kiln::cuda {

namespace {

template <typename T>
__global__ void xent_kernel(const T* __restrict__ logits, const int32_t* __restrict__ labels,
                            T* __restrict__ dlogits, int64_t classes, float scale,
                            double* __restrict__ stats) {
  __shared__ float fscratch[32];
  __shared__ int iscratch[32];
  const int64_t row = blockIdx.x;
  const T* z = logits + row * classes;
  const int label = labels[row];
  // Max and its first index (ties go to the lowest index, as on the CPU).
  float best = -FLT_MAX;
  int best_i = 0;
  for (int64_t j = threadIdx.x; j < classes; j += blockDim.x) {
    const float v = to_f32(z[j]);
    if (v > best) {
      best = v;
      best_i = static_cast<int>(j);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, best_i, o);
    if (ov > best || (ov == best && oi < best_i)) {
      best = ov;
      best_i = oi;
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  if (lane == 0) {
    fscratch[warp] = best;
    iscratch[warp] = best_i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int k = 1; k < warps; ++k) {
      if (fscratch[k] > fscratch[0] || (fscratch[k] == fscratch[0] && iscratch[k] < iscratch[0])) {
        fscratch[0] = fscratch[k];
        iscratch[0] = iscratch[k];
      }
    }
  }
  __syncthreads();
  const float zmax = fscratch[0];
  const int arg = iscratch[0];
  __syncthreads();
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < classes; j += blockDim.x) sum += __expf(to_f32(z[j]) - zmax);
  sum = block_sum(sum, fscratch);
  const float lse = zmax + logf(sum);
  if (threadIdx.x == 0) {
    const bool valid = label >= 0 && label < classes;
    atomicAdd(&stats[0], static_cast<double>(valid ? lse - to_f32(z[label]) : NAN));
    atomicAdd(&stats[1], (valid && arg == label) ? 1.0 : 0.0);
  }
  if (dlogits) {
    const float inv = 1.f / sum;
    T* d = dlogits + row * classes;
    for (int64_t j = threadIdx.x; j < classes; j += blockDim.x) {
      float g = __expf(to_f32(z[j]) - zmax) * inv * scale;
      if (j == label) g -= scale;
      d[j] = from_f32<T>(g);
    }
  }
}

}  // namespace

void softmax_xent(DType dt, const void* logits, const int32_t* labels, void* dlogits, int64_t rows,
                  int64_t classes, float grad_scale, double* stats, cudaStream_t s) {
  if (rows == 0) return;
  const int threads = classes >= 256 ? 256 : (classes >= 128 ? 128 : 32);
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    xent_kernel<T><<<static_cast<unsigned>(rows), threads, 0, s>>>(static_cast<const T*>(logits),
                                                                   labels, static_cast<T*>(dlogits),
                                                                   classes, grad_scale, stats);
  });
}

}  // namespace kiln::cuda
