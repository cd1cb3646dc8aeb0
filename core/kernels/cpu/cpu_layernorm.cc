// CPU layer normalisation over the last dimension, saving mean and 1/std for backward. Rows are
// spread over threads; the weight and bias gradients are summed per thread and then added in
// thread order, so the result depends only on the thread count, not on scheduling.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/kernels/cpu/cpu_ops.h"

namespace kiln {

namespace {

constexpr int64_t kParallelMin = 1 << 14;

template <typename T>
void ln_fwd(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t N, int64_t C,
            T eps) {
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t r = 0; r < N; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    T s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; ++c) s += xr[c];
    const T m = s / static_cast<T>(C);
    T v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t c = 0; c < C; ++c) v += (xr[c] - m) * (xr[c] - m);
    const T rs = T(1) / std::sqrt(v / static_cast<T>(C) + eps);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - m) * rs * w[c] + b[c];
    mean[r] = m;
    rstd[r] = rs;
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w, xhat = (x - mean) * rstd.
template <typename T>
void ln_bwd(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, T* dx, T* dw, T* db,
            int64_t N, int64_t C, bool accumulate, T* partial, int threads) {
  const bool parallel = N * C > kParallelMin;
  const int used = parallel ? threads : 1;
  // Zeroed up front: OpenMP may grant fewer threads than asked, leaving some slots unused.
  std::fill(partial, partial + static_cast<int64_t>(used) * 2 * C, T(0));
#pragma omp parallel num_threads(used)
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    T* pdw = partial + static_cast<int64_t>(t) * 2 * C;
    T* pdb = pdw + C;
    const int64_t r0 = N * t / nt, r1 = N * (t + 1) / nt;
    const T inv_c = T(1) / static_cast<T>(C);
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      const T* gr = dy + r * C;
      T* dxr = dx + r * C;
      const T m = mean[r], rs = rstd[r];
      T sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t c = 0; c < C; ++c) {
        const T xhat = (xr[c] - m) * rs;
        const T g = gr[c] * w[c];
        sum_g += g;
        sum_gx += g * xhat;
        pdw[c] += gr[c] * xhat;
        pdb[c] += gr[c];
      }
      const T mg = sum_g * inv_c, mgx = sum_gx * inv_c;
      if (accumulate) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          dxr[c] += rs * (gr[c] * w[c] - mg - (xr[c] - m) * rs * mgx);
        }
      } else {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          dxr[c] = rs * (gr[c] * w[c] - mg - (xr[c] - m) * rs * mgx);
        }
      }
    }
  }
  for (int t = 0; t < used; ++t) {
    const T* pdw = partial + static_cast<int64_t>(t) * 2 * C;
    const T* pdb = pdw + C;
    for (int64_t c = 0; c < C; ++c) {
      dw[c] += pdw[c];
      db[c] += pdb[c];
    }
  }
}

}  // namespace

void CpuOps::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y,
                               Tensor& mean, Tensor& rstd, float eps) {
  const RowsShape s = check_layernorm(x, w, b, y, mean, rstd);
  KILN_FLOAT_CALL(x, "layernorm_forward",
                  ln_fwd<T>(x.data<T>(), w.data<T>(), b.data<T>(), y.data<T>(), mean.data<T>(),
                            rstd.data<T>(), s.N, s.C, static_cast<T>(eps)));
}

void CpuOps::layernorm_backward(const Tensor& x, const Tensor& w, const Tensor& mean,
                                const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dw,
                                Tensor& db, bool accumulate_dx) {
  const RowsShape s = check_layernorm_backward(x, w, mean, rstd, dy, dx, dw, db);
  const int threads = omp_get_max_threads();
  KILN_FLOAT_CALL(x, "layernorm_backward", {
    T* partial = scratch<T>(static_cast<size_t>(threads) * 2 * static_cast<size_t>(s.C));
    ln_bwd<T>(x.data<T>(), w.data<T>(), mean.data<T>(), rstd.data<T>(), dy.data<T>(), dx.data<T>(),
              dw.data<T>(), db.data<T>(), s.N, s.C, accumulate_dx, partial, threads);
  });
}

}  // namespace kiln
