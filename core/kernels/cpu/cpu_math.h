// Vectorisable float exponential for the CPU kernels. glibc's expf/tanhf are scalar calls that
// GCC will not vectorise without -ffast-math, and GELU and softmax spend most of their time in
// them. exp_approx is branch-free (Cody-Waite reduction to |r| <= ln2/2, a degree-7 Taylor
// polynomial, 2^n built in the exponent bits), so loops over it vectorise under `omp simd`;
// its error is within 2 ulp of expf over the clamped range. double keeps std::exp (the f64
// kernels exist for finite-difference tests, where accuracy matters more than speed).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace kiln::cpu {

inline float exp_approx(float x) {
  // Clamped so that 2^n stays a normal float: results saturate near 1e-38 and 3e38.
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * kLog2e + kRound) - kRound;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

inline double exp_approx(double x) { return std::exp(x); }

}  // namespace kiln::cpu
