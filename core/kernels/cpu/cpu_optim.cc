// CPU optimizer updates: one fused pass over a range of the flat parameter buffer.
#include <cmath>

#include "core/kernels/cpu/cpu_ops.h"

namespace kiln {

namespace {
constexpr int64_t kParallelMin = 1 << 15;
}

void CpuOps::adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                        const AdamWArgs& a) {
  check_optimizer_f32(param, grad, m, &v, "adamw_step");
  const int64_t n = param.numel();
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* mp = m.data<float>();
  float* vp = v.data<float>();
  // PyTorch's AdamW: decay, moments, bias-corrected step (same operation order, for parity).
  // The scalars are computed in double, as Python computes them, then rounded once.
  const double bc1 = 1.0 - std::pow(a.beta1, static_cast<double>(a.step));
  const double bc2 = 1.0 - std::pow(a.beta2, static_cast<double>(a.step));
  const float step_size = static_cast<float>(a.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay = static_cast<float>(1.0 - a.lr * a.weight_decay);
  const float b1 = static_cast<float>(a.beta1), b2 = static_cast<float>(a.beta2);
  const float one_minus_b1 = static_cast<float>(1.0 - a.beta1);
  const float one_minus_b2 = static_cast<float>(1.0 - a.beta2);
  const float eps = static_cast<float>(a.eps), gs = a.grad_scale;
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * gs;
    const float pi = p[i] * decay;
    const float mi = mp[i] * b1 + gi * one_minus_b1;
    const float vi = vp[i] * b2 + one_minus_b2 * gi * gi;
    mp[i] = mi;
    vp[i] = vi;
    p[i] = pi - step_size * mi / (std::sqrt(vi) / bc2_sqrt + eps);
  }
}

void CpuOps::sgd_step(Tensor& param, const Tensor& grad, Tensor& buf, const SgdArgs& a) {
  check_optimizer_f32(param, grad, buf, nullptr, "sgd_step");
  const int64_t n = param.numel();
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* b = buf.data<float>();
  const float lr = a.lr, mom = a.momentum, damp = 1.0f - a.dampening, wd = a.weight_decay;
  const float gs = a.grad_scale;
  const bool first = a.first_step, nesterov = a.nesterov, use_mom = a.momentum != 0.0f;
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i] * gs + wd * p[i];
    if (use_mom) {
      const float bi = first ? d : mom * b[i] + damp * d;
      b[i] = bi;
      d = nesterov ? d + mom * bi : bi;
    }
    p[i] -= lr * d;
  }
}

}  // namespace kiln
