// CPU matrix products and the linear layer, through OpenBLAS (cblas, row-major).
#include <cblas.h>

#include "core/kernels/cpu/cpu_ops.h"

namespace kiln {

namespace cpu {

template <typename T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  auto TA = ta ? CblasTrans : CblasNoTrans;
  auto TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    cblas_dgemm(CblasRowMajor, TA, TB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace cpu

namespace {

using cpu::gemm;

template <typename T>
void linear_fwd(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  const int64_t n = x.dim(0), in = x.numel() / std::max<int64_t>(1, n), out = w.dim(0);
  T* yp = y.data<T>();
  const T* bp = b.data<T>();
  // Start from the bias so the GEMM accumulates onto it (beta = 1): one pass over y, not two.
#pragma omp parallel for if (n * out > 32768)
  for (int64_t r = 0; r < n; ++r) {
    T* row = yp + r * out;
    for (int64_t j = 0; j < out; ++j) row[j] = bp[j];
  }
  gemm<T>(false, true, n, out, in, T(1), x.data<T>(), in, w.data<T>(), in, T(1), yp, out);
}

template <typename T>
void bias_grad_rows(const T* dy, T* db, int64_t rows, int64_t cols) {
  // Column sums; small (rows = batch), so one vectorised pass.
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = dy + r * cols;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) db[j] += row[j];
  }
}

template <typename T>
void linear_bwd(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                Tensor& db) {
  const int64_t n = x.dim(0), in = x.numel() / std::max<int64_t>(1, n), out = w.dim(0);
  const T* dyp = dy.data<T>();
  gemm<T>(true, false, out, in, n, T(1), dyp, out, x.data<T>(), in, T(1), dw.data<T>(), in);
  bias_grad_rows<T>(dyp, db.data<T>(), n, out);
  if (dx)
    gemm<T>(false, false, n, in, out, T(1), dyp, out, w.data<T>(), in, T(0), dx->data<T>(), in);
}

}  // namespace

void CpuOps::matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
                    float alpha, float beta) {
  const MatmulShape s = check_matmul(a, trans_a, b, trans_b, c);
  KILN_FLOAT_CALL(a, "matmul",
                  gemm<T>(trans_a, trans_b, s.m, s.n, s.k, static_cast<T>(alpha), a.data<T>(),
                          a.dim(1), b.data<T>(), b.dim(1), static_cast<T>(beta), c.data<T>(), s.n));
}

void CpuOps::linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  check_linear(x, w, b, y);
  KILN_FLOAT_CALL(x, "linear_forward", linear_fwd<T>(x, w, b, y));
}

void CpuOps::linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                             Tensor& dw, Tensor& db) {
  check_linear_backward(x, w, dy, dx, dw, db);
  KILN_FLOAT_CALL(x, "linear_backward", linear_bwd<T>(x, w, dy, dx, dw, db));
}

}  // namespace kiln
