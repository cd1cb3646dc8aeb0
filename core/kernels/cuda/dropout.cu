// Inverted dropout with the same counter-based masks as the CPU (core/rng.h): the mask of
// (sample, element) is identical on every device and every split of the batch.
#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/kernels.h"
#include "core/rng.h"

namespace kiln::cuda {

namespace {

// One thread per group of 4 consecutive elements of a sample (one Philox call each).
template <typename T>
__global__ void dropout_fwd_kernel(const T* __restrict__ x, T* __restrict__ y,
                                   uint8_t* __restrict__ mask, int64_t samples,
                                   int64_t per_sample, uint32_t threshold, float keep_scale,
                                   DropoutKey key) {
  const int64_t groups = (per_sample + 3) / 4;
  const int64_t total = samples * groups;
  const uint32_t k0 = static_cast<uint32_t>(key.seed), k1 = static_cast<uint32_t>(key.seed >> 32);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t g = blockIdx.x * blockDim.x + threadIdx.x; g < total; g += stride) {
    const int64_t s = g / groups, j0 = (g % groups) * 4;
    const uint64_t gs = static_cast<uint64_t>(key.first_sample + s);
    Philox4 r = philox4x32(static_cast<uint32_t>(j0 / 4), static_cast<uint32_t>(gs),
                           static_cast<uint32_t>(gs >> 32) ^ (key.layer << 16),
                           static_cast<uint32_t>(key.step), k0, k1);
    const int64_t end = per_sample - j0 < 4 ? per_sample - j0 : 4;
    for (int64_t q = 0; q < end; ++q) {
      const int64_t i = s * per_sample + j0 + q;
      const uint8_t keep = (r.v[q] >> 8) >= threshold ? 1 : 0;
      mask[i] = keep;
      y[i] = from_f32<T>(keep ? to_f32(x[i]) * keep_scale : 0.f);
    }
  }
}

template <typename T>
__global__ void dropout_bwd_kernel(const T* __restrict__ dy, const uint8_t* __restrict__ mask,
                                   T* __restrict__ dx, int64_t n, float keep_scale) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    dx[i] = from_f32<T>(mask[i] ? to_f32(dy[i]) * keep_scale : 0.f);
  }
}

}  // namespace

void dropout_forward(DType dt, const void* x, void* y, uint8_t* mask, int64_t n,
                     int64_t per_sample, float p, const DropoutKey& key, cudaStream_t s) {
  if (n == 0 || per_sample == 0) return;
  // Same threshold and scale arithmetic as the CPU kernel, so masks and values agree.
  const uint32_t threshold = static_cast<uint32_t>(static_cast<double>(p) * 16777216.0);
  const float keep_scale = 1.0f / (1.0f - p);
  const int64_t samples = n / per_sample;
  const int64_t groups = samples * ((per_sample + 3) / 4);
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    dropout_fwd_kernel<T><<<blocks_for(groups), kThreads, 0, s>>>(
        static_cast<const T*>(x), static_cast<T*>(y), mask, samples, per_sample, threshold,
        keep_scale, key);
  });
}

void dropout_backward(DType dt, const void* dy, const uint8_t* mask, void* dx, int64_t n, float p,
                      cudaStream_t s) {
  if (n == 0) return;
  const float keep_scale = 1.0f / (1.0f - p);
  dispatch_float(dt, [&](auto t) {
    using T = decltype(t);
    dropout_bwd_kernel<T><<<blocks_for(n), kThreads, 0, s>>>(
        static_cast<const T*>(dy), mask, static_cast<T*>(dx), n, keep_scale);
  });
}

}  // namespace kiln::cuda
