// CPU element-wise kernels: activations, dropout, residual addition, flat-buffer reductions.
#include <cmath>

#include "core/kernels/cpu/cpu_math.h"
#include "core/kernels/cpu/cpu_ops.h"
#include "core/rng.h"

namespace kiln {

namespace {

constexpr int64_t kParallelMin = 1 << 15;  // below this, one thread is faster than waking more

template <typename T>
void relu_f(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <typename T>
void relu_b(const T* y, const T* dy, T* dx, int64_t n) {
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

// gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), computed as x s with
// s = sigmoid(2u) = 0.5 (1 + tanh(u)): one vectorised exponential instead of a tanh call.
// Its derivative is s + 2 x s (1 - s) u'.
template <typename T>
void gelu_f(const T* x, T* y, int64_t n) {
  const T c2 = T(2 * 0.7978845608028654), a = T(0.044715);
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    const T s = T(1) / (T(1) + cpu::exp_approx(-c2 * (v + a * v * v * v)));
    y[i] = v * s;
  }
}

template <typename T>
void gelu_b(const T* x, const T* dy, T* dx, int64_t n) {
  const T c = T(0.7978845608028654), a = T(0.044715);
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    const T s = T(1) / (T(1) + cpu::exp_approx(T(-2) * c * (v + a * v * v * v)));
    const T du = c * (T(1) + T(3) * a * v * v);
    dx[i] = dy[i] * (s + T(2) * v * s * (T(1) - s) * du);
  }
}

template <typename T>
void dropout_f(const T* x, T* y, uint8_t* mask, int64_t n, int64_t per_sample, float p,
               const DropoutKey& key) {
  const T keep_scale = T(1) / (T(1) - T(p));
  // Keep when the 24-bit uniform draw is >= p, i.e. with probability 1 - p.
  const uint32_t threshold = static_cast<uint32_t>(static_cast<double>(p) * 16777216.0);
  const uint32_t k0 = static_cast<uint32_t>(key.seed), k1 = static_cast<uint32_t>(key.seed >> 32);
  const int64_t samples = per_sample ? n / per_sample : 0;
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t s = 0; s < samples; ++s) {
    const uint64_t gs = static_cast<uint64_t>(key.first_sample + s);
    for (int64_t j0 = 0; j0 < per_sample; j0 += 4) {
      // One Philox call gives the draws of 4 consecutive elements of this sample.
      Philox4 r = philox4x32(static_cast<uint32_t>(j0 / 4), static_cast<uint32_t>(gs),
                             static_cast<uint32_t>(gs >> 32) ^ (key.layer << 16),
                             static_cast<uint32_t>(key.step), k0, k1);
      const int64_t end = std::min<int64_t>(4, per_sample - j0);
      for (int64_t q = 0; q < end; ++q) {
        const int64_t i = s * per_sample + j0 + q;
        const uint8_t keep = (r.v[q] >> 8) >= threshold ? 1 : 0;
        mask[i] = keep;
        y[i] = keep ? x[i] * keep_scale : T(0);
      }
    }
  }
}

template <typename T>
void dropout_b(const T* dy, const uint8_t* mask, T* dx, int64_t n, float p) {
  const T keep_scale = T(1) / (T(1) - T(p));
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = mask[i] ? dy[i] * keep_scale : T(0);
}

template <typename T>
double sumsq(const T* x, int64_t n) {
  double acc = 0;
#pragma omp parallel for simd reduction(+ : acc) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return acc;
}

template <typename T>
bool finite(const T* x, int64_t n) {
  int bad = 0;
#pragma omp parallel for simd reduction(| : bad) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) bad |= !std::isfinite(x[i]);
  return bad == 0;
}

template <typename T>
void add_f(const T* a, const T* b, T* y, int64_t n) {
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

template <typename T>
void scale_f(T* p, T a, int64_t n) {
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) p[i] *= a;
}

}  // namespace

void CpuOps::relu_forward(const Tensor& x, Tensor& y) {
  check_unary(x, y, "relu_forward");
  KILN_FLOAT_CALL(x, "relu_forward", relu_f<T>(x.data<T>(), y.data<T>(), x.numel()));
}

void CpuOps::relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  check_unary_backward(y, dy, dx, "relu_backward");
  KILN_FLOAT_CALL(y, "relu_backward",
                  relu_b<T>(y.data<T>(), dy.data<T>(), dx.data<T>(), y.numel()));
}

void CpuOps::gelu_forward(const Tensor& x, Tensor& y) {
  check_unary(x, y, "gelu_forward");
  KILN_FLOAT_CALL(x, "gelu_forward", gelu_f<T>(x.data<T>(), y.data<T>(), x.numel()));
}

void CpuOps::gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  check_unary_backward(x, dy, dx, "gelu_backward");
  KILN_FLOAT_CALL(x, "gelu_backward",
                  gelu_b<T>(x.data<T>(), dy.data<T>(), dx.data<T>(), x.numel()));
}

void CpuOps::dropout_forward(const Tensor& x, Tensor& y, Tensor& mask, float p,
                             const DropoutKey& key) {
  const int64_t per_sample = check_dropout(x, y, mask, p);
  KILN_FLOAT_CALL(
      x, "dropout_forward",
      dropout_f<T>(x.data<T>(), y.data<T>(), mask.data<uint8_t>(), x.numel(), per_sample, p, key));
}

void CpuOps::dropout_backward(const Tensor& dy, const Tensor& mask, Tensor& dx, float p) {
  check_dropout_backward(dy, mask, dx, p);
  KILN_FLOAT_CALL(dy, "dropout_backward",
                  dropout_b<T>(dy.data<T>(), mask.data<uint8_t>(), dx.data<T>(), dy.numel(), p));
}

void CpuOps::add(const Tensor& a, const Tensor& b, Tensor& y) {
  check_add(a, b, y);
  KILN_FLOAT_CALL(a, "add", add_f<T>(a.data<T>(), b.data<T>(), y.data<T>(), a.numel()));
}

double CpuOps::sum_squares(const Tensor& x) {
  double r = 0;
  KILN_FLOAT_CALL(x, "sum_squares", r = sumsq<T>(x.data<T>(), x.numel()));
  return r;
}

void CpuOps::scale(Tensor& x, double alpha) {
  KILN_FLOAT_CALL(x, "scale", scale_f<T>(x.data<T>(), static_cast<T>(alpha), x.numel()));
}

bool CpuOps::all_finite(const Tensor& x) {
  bool r = true;
  KILN_FLOAT_CALL(x, "all_finite", r = finite<T>(x.data<T>(), x.numel()));
  return r;
}

void CpuOps::cast(const Tensor& src, Tensor& dst, bool accumulate) {
  // No kernel dtype check: this loop converts between all four float types.
  check_cast(src, dst);
  const int64_t n = src.numel();
  const void* s = src.raw();
  void* d = dst.raw();
  const DType st = src.dtype(), dt = dst.dtype();
  // 16-bit values go through f32 (exact), so the rounding is f32 -> 16-bit's, as on a GPU.
#pragma omp parallel for if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    double v = load_element(s, st, i);
    if (accumulate) v += load_element(d, dt, i);
    store_element(d, dt, i, v);
  }
}

}  // namespace kiln
