// CPU 2-D convolution, NCHW: im2col over a chunk of samples, then one large GEMM per chunk so
// OpenBLAS runs on a well-shaped problem with all threads.
#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "core/kernels/cpu/cpu_ops.h"

namespace kiln {

namespace {

struct Geometry {
  int64_t n, c, h, w;  // input
  int64_t o, kh, kw;   // filters
  int64_t ho, wo;      // output
  int64_t stride, pad;
  int64_t ckk() const { return c * kh * kw; }
  int64_t hw_out() const { return ho * wo; }
};

Geometry geometry(const ConvShape& s, const Conv2dParams& p) {
  return Geometry{s.n, s.c, s.h, s.w, s.o, s.kh, s.kw, s.ho, s.wo, p.stride, p.pad};
}

// Samples per chunk so that the im2col matrix stays within ~24 MiB.
// Below this many elements a loop runs on one thread: waking the others costs more, and far
// more when the cores are shared with other processes.
constexpr int64_t kParallelMin = 1 << 15;

int64_t chunk_samples(const Geometry& g, size_t elem) {
  const int64_t budget = (24 << 20) / static_cast<int64_t>(elem);
  int64_t per_sample = std::max<int64_t>(1, g.ckk() * g.hw_out());
  return std::clamp<int64_t>(budget / per_sample, 1, g.n);
}

// col (ckk, s * hw_out): row (c, ki, kj), column (sample, oh, ow).
template <typename T>
void im2col(const T* x, const Geometry& g, int64_t s, T* col) {
  const int64_t cols = s * g.hw_out();
#pragma omp parallel for if (g.ckk() * cols > kParallelMin)
  for (int64_t r = 0; r < g.ckk(); ++r) {
    const int64_t c = r / (g.kh * g.kw), ki = (r / g.kw) % g.kh, kj = r % g.kw;
    T* dst_row = col + r * cols;
    for (int64_t si = 0; si < s; ++si) {
      const T* plane = x + (si * g.c + c) * g.h * g.w;
      T* dst = dst_row + si * g.hw_out();
      for (int64_t oh = 0; oh < g.ho; ++oh) {
        const int64_t ih = oh * g.stride - g.pad + ki;
        T* d = dst + oh * g.wo;
        if (ih < 0 || ih >= g.h) {
          std::memset(d, 0, sizeof(T) * g.wo);
          continue;
        }
        const T* src = plane + ih * g.w;
        if (g.stride == 1) {
          // iw = ow - pad + kj: valid for ow in [lo, hi)
          const int64_t lo = std::clamp<int64_t>(g.pad - kj, 0, g.wo);
          const int64_t hi = std::clamp<int64_t>(g.w + g.pad - kj, lo, g.wo);
          for (int64_t ow = 0; ow < lo; ++ow) d[ow] = T(0);
          std::memcpy(d + lo, src + lo - g.pad + kj, sizeof(T) * (hi - lo));
          for (int64_t ow = hi; ow < g.wo; ++ow) d[ow] = T(0);
        } else {
          for (int64_t ow = 0; ow < g.wo; ++ow) {
            const int64_t iw = ow * g.stride - g.pad + kj;
            d[ow] = (iw >= 0 && iw < g.w) ? src[iw] : T(0);
          }
        }
      }
    }
  }
}

// dx (s samples) += scatter of dcol; each (sample, channel) plane is owned by one thread.
template <typename T>
void col2im(const T* dcol, const Geometry& g, int64_t s, T* dx) {
  const int64_t cols = s * g.hw_out();
#pragma omp parallel for if (g.ckk() * cols > kParallelMin)
  for (int64_t sc = 0; sc < s * g.c; ++sc) {
    const int64_t si = sc / g.c, c = sc % g.c;
    T* plane = dx + sc * g.h * g.w;
    std::memset(plane, 0, sizeof(T) * g.h * g.w);
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const int64_t r = (c * g.kh + ki) * g.kw + kj;
        const T* src = dcol + r * cols + si * g.hw_out();
        for (int64_t oh = 0; oh < g.ho; ++oh) {
          const int64_t ih = oh * g.stride - g.pad + ki;
          if (ih < 0 || ih >= g.h) continue;
          T* drow = plane + ih * g.w;
          const T* srow = src + oh * g.wo;
          for (int64_t ow = 0; ow < g.wo; ++ow) {
            const int64_t iw = ow * g.stride - g.pad + kj;
            if (iw >= 0 && iw < g.w) drow[iw] += srow[ow];
          }
        }
      }
    }
  }
}

template <typename T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  auto TA = ta ? CblasTrans : CblasNoTrans;
  auto TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  } else {
    cblas_dgemm(CblasRowMajor, TA, TB, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
  }
}

template <typename T, typename Scratch>
void conv_fwd(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, const Geometry& g,
              Scratch&& scratch) {
  const int64_t S = chunk_samples(g, sizeof(T));
  const int64_t hw = g.hw_out();
  T* col = scratch(static_cast<size_t>(S * (g.ckk() + g.o) * hw));
  T* out = col + S * g.ckk() * hw;  // (O, S * hw)
  const T* xp = x.data<T>();
  const T* wp = w.data<T>();
  const T* bp = b.data<T>();
  T* yp = y.data<T>();
  for (int64_t n0 = 0; n0 < g.n; n0 += S) {
    const int64_t s = std::min(S, g.n - n0);
    im2col<T>(xp + n0 * g.c * g.h * g.w, g, s, col);
    gemm<T>(false, false, g.o, s * hw, g.ckk(), wp, g.ckk(), col, s * hw, T(0), out, s * hw);
    // (O, s, hw) -> (s, O, hw), adding the bias on the way.
#pragma omp parallel for if (s * g.o * hw > kParallelMin)
    for (int64_t so = 0; so < s * g.o; ++so) {
      const int64_t si = so / g.o, o = so % g.o;
      const T* src = out + o * s * hw + si * hw;
      T* dst = yp + ((n0 + si) * g.o + o) * hw;
      const T bias = bp[o];
#pragma omp simd
      for (int64_t p = 0; p < hw; ++p) dst[p] = src[p] + bias;
    }
  }
}

template <typename T, typename Scratch>
void conv_bwd(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
              Tensor& db, const Geometry& g, Scratch&& scratch) {
  const int64_t S = chunk_samples(g, sizeof(T));
  const int64_t hw = g.hw_out();
  T* col = scratch(static_cast<size_t>(S * (2 * g.ckk() + g.o) * hw));
  T* dout = col + S * g.ckk() * hw;  // (O, S * hw)
  T* dcol = dout + S * g.o * hw;     // (ckk, S * hw)
  const T* xp = x.data<T>();
  const T* wp = w.data<T>();
  const T* dyp = dy.data<T>();
  T* dwp = dw.data<T>();
  T* dbp = db.data<T>();
  for (int64_t n0 = 0; n0 < g.n; n0 += S) {
    const int64_t s = std::min(S, g.n - n0);
    // (s, O, hw) -> (O, s, hw); the bias gradient is the sum of each output plane.
#pragma omp parallel for if (s * g.o * hw > kParallelMin)
    for (int64_t o = 0; o < g.o; ++o) {
      T acc = 0;
      for (int64_t si = 0; si < s; ++si) {
        const T* src = dyp + ((n0 + si) * g.o + o) * hw;
        T* dst = dout + o * s * hw + si * hw;
#pragma omp simd reduction(+ : acc)
        for (int64_t p = 0; p < hw; ++p) {
          dst[p] = src[p];
          acc += src[p];
        }
      }
      dbp[o] += acc;
    }
    im2col<T>(xp + n0 * g.c * g.h * g.w, g, s, col);
    gemm<T>(false, true, g.o, g.ckk(), s * hw, dout, s * hw, col, s * hw, T(1), dwp, g.ckk());
    if (dx) {
      gemm<T>(true, false, g.ckk(), s * hw, g.o, wp, g.ckk(), dout, s * hw, T(0), dcol, s * hw);
      col2im<T>(dcol, g, s, dx->data<T>() + n0 * g.c * g.h * g.w);
    }
  }
}

}  // namespace

void CpuOps::conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y,
                            const Conv2dParams& p) {
  const Geometry g = geometry(check_conv2d(x, w, b, y, p), p);
  KILN_FLOAT_CALL(x, "conv2d_forward",
                  conv_fwd<T>(x, w, b, y, g, [this](size_t n) { return scratch<T>(n); }));
}

void CpuOps::conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                             Tensor& dw, Tensor& db, const Conv2dParams& p) {
  const Geometry g = geometry(check_conv2d_backward(x, w, dy, dx, dw, db, p), p);
  KILN_FLOAT_CALL(x, "conv2d_backward",
                  conv_bwd<T>(x, w, dy, dx, dw, db, g, [this](size_t n) { return scratch<T>(n); }));
}

}  // namespace kiln
