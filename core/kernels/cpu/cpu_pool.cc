// CPU max-pooling over (N, C, H, W), one (sample, channel) plane per iteration.
#include "core/kernels/cpu/cpu_ops.h"

namespace kiln {

namespace {

// PyTorch's rule: an element replaces the current maximum when it is larger or NaN, scanning
// the window row by row.
template <typename T>
inline void take(T v, int32_t i, T& best, int32_t& best_i) {
  if (v > best || v != v) {
    best = v;
    best_i = i;
  }
}

// The common 2x2, stride-2 window, unrolled.
template <typename T>
void pool2x2_plane(const T* in, int64_t w, T* out, int32_t* arg, int64_t ho, int64_t wo) {
  for (int64_t oh = 0; oh < ho; ++oh) {
    const T* r0 = in + 2 * oh * w;
    const T* r1 = r0 + w;
    const int32_t base = static_cast<int32_t>(2 * oh * w);
    for (int64_t ow = 0; ow < wo; ++ow) {
      const int64_t c = 2 * ow;
      T best = r0[c];
      int32_t bi = base + static_cast<int32_t>(c);
      take(r0[c + 1], bi + 1, best, bi);
      take(r1[c], base + static_cast<int32_t>(w + c), best, bi);
      take(r1[c + 1], base + static_cast<int32_t>(w + c + 1), best, bi);
      out[oh * wo + ow] = best;
      arg[oh * wo + ow] = bi;
    }
  }
}

template <typename T>
void pool_fwd(const Tensor& x, Tensor& y, Tensor& argmax, int64_t k, int64_t s) {
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t ho = y.dim(2), wo = y.dim(3);
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  int32_t* ap = argmax.data<int32_t>();
#pragma omp parallel for if (planes * ho * wo > 16384)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* in = xp + pl * h * w;
    T* out = yp + pl * ho * wo;
    int32_t* arg = ap + pl * ho * wo;
    if (k == 2 && s == 2) {
      pool2x2_plane(in, w, out, arg, ho, wo);
      continue;
    }
    for (int64_t oh = 0; oh < ho; ++oh) {
      for (int64_t ow = 0; ow < wo; ++ow) {
        T best = in[oh * s * w + ow * s];
        int32_t bi = static_cast<int32_t>(oh * s * w + ow * s);
        for (int64_t i = 0; i < k; ++i) {
          for (int64_t j = 0; j < k; ++j) {
            const int64_t at = (oh * s + i) * w + ow * s + j;
            if (i || j) take(in[at], static_cast<int32_t>(at), best, bi);
          }
        }
        out[oh * wo + ow] = best;
        arg[oh * wo + ow] = bi;
      }
    }
  }
}

template <typename T>
void pool_bwd(const Tensor& dy, const Tensor& argmax, Tensor& dx) {
  const int64_t planes = dx.dim(0) * dx.dim(1), hw = dx.dim(2) * dx.dim(3);
  const int64_t ohw = dy.dim(2) * dy.dim(3);
  const T* dyp = dy.data<T>();
  const int32_t* ap = argmax.data<int32_t>();
  T* dxp = dx.data<T>();
#pragma omp parallel for if (planes * hw > 16384)
  for (int64_t pl = 0; pl < planes; ++pl) {
    T* d = dxp + pl * hw;
    for (int64_t i = 0; i < hw; ++i) d[i] = T(0);
    const T* g = dyp + pl * ohw;
    const int32_t* a = ap + pl * ohw;
    for (int64_t i = 0; i < ohw; ++i) d[a[i]] += g[i];
  }
}

}  // namespace

void CpuOps::maxpool2d_forward(const Tensor& x, Tensor& y, Tensor& argmax, int64_t kernel,
                               int64_t stride) {
  check_maxpool2d(x, y, argmax, kernel, stride);
  KILN_FLOAT_CALL(x, "maxpool2d_forward", pool_fwd<T>(x, y, argmax, kernel, stride));
}

void CpuOps::maxpool2d_backward(const Tensor& dy, const Tensor& argmax, Tensor& dx) {
  check_maxpool2d_backward(dy, argmax, dx);
  KILN_FLOAT_CALL(dy, "maxpool2d_backward", pool_bwd<T>(dy, argmax, dx));
}

}  // namespace kiln
