// Fused AdamW and SGD over a range of the flat f32 buffers: one pass, 16-byte vectors.
#include <cmath>

#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/kernels.h"

namespace kiln::cuda {

namespace {

// 1 - beta is computed in double and rounded once, as the CPU kernel (and PyTorch) do.
struct AdamScalars {
  float b1, one_minus_b1, b2, one_minus_b2, eps, step_size, bc2_sqrt, decay, gs;
};

__device__ __forceinline__ void adam_one(float& p, float g, float& m, float& v,
                                         const AdamScalars& a) {
  g *= a.gs;
  p *= a.decay;
  m = m * a.b1 + g * a.one_minus_b1;
  v = v * a.b2 + a.one_minus_b2 * g * g;
  p = p - a.step_size * m / (sqrtf(v) / a.bc2_sqrt + a.eps);
}

__global__ void adamw_kernel(float* __restrict__ p, const float* __restrict__ g,
                             float* __restrict__ m, float* __restrict__ v, int64_t n, bool vec,
                             AdamScalars a) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t nv = vec ? n / 4 : 0;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += stride) {
    float4 pp = reinterpret_cast<float4*>(p)[i], gg = reinterpret_cast<const float4*>(g)[i];
    float4 mm = reinterpret_cast<float4*>(m)[i], vv = reinterpret_cast<float4*>(v)[i];
    adam_one(pp.x, gg.x, mm.x, vv.x, a);
    adam_one(pp.y, gg.y, mm.y, vv.y, a);
    adam_one(pp.z, gg.z, mm.z, vv.z, a);
    adam_one(pp.w, gg.w, mm.w, vv.w, a);
    reinterpret_cast<float4*>(p)[i] = pp;
    reinterpret_cast<float4*>(m)[i] = mm;
    reinterpret_cast<float4*>(v)[i] = vv;
  }
  for (int64_t i = nv * 4 + blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    float pi = p[i], mi = m[i], vi = v[i];
    adam_one(pi, g[i], mi, vi, a);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void sgd_kernel(float* __restrict__ p, const float* __restrict__ g,
                           float* __restrict__ b, int64_t n, SgdArgs a) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const float damp = 1.f - a.dampening;
  for (int64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    float d = g[i] * a.grad_scale + a.weight_decay * p[i];
    if (a.momentum != 0.f) {
      const float bi = a.first_step ? d : a.momentum * b[i] + damp * d;
      b[i] = bi;
      d = a.nesterov ? d + a.momentum * bi : bi;
    }
    p[i] -= a.lr * d;
  }
}

}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWArgs& a,
                cudaStream_t s) {
  if (n == 0) return;
  // The scalars exactly as the CPU kernel computes them.
  const double bc1 = 1.0 - std::pow(static_cast<double>(a.beta1), static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(a.beta2), static_cast<double>(a.step));
  AdamScalars sc{static_cast<float>(a.beta1), static_cast<float>(1.0 - a.beta1),
                 static_cast<float>(a.beta2), static_cast<float>(1.0 - a.beta2),
                 static_cast<float>(a.eps), static_cast<float>(a.lr / bc1),
                 static_cast<float>(std::sqrt(bc2)),
                 static_cast<float>(1.0 - a.lr * a.weight_decay), a.grad_scale};
  const bool vec = aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v);
  adamw_kernel<<<blocks_for(n, vec ? 4 : 1), kThreads, 0, s>>>(p, g, m, v, n, vec, sc);
}

void sgd_step(float* p, const float* g, float* buf, int64_t n, const SgdArgs& a, cudaStream_t s) {
  if (n == 0) return;
  sgd_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, g, buf, n, a);
}

}  // namespace kiln::cuda
