// CPU matrix products and the linear layer, through OpenBLAS (cblas, row-major).
#include <cblas.h>

#include "core/kernels/cpu/cpu_ops.h"

namespace kiln {

namespace cpu {

void check_same(const Tensor& a, const Tensor& b, const char* what) {
  KILN_CHECK(a.dtype() == b.dtype() && a.numel() == b.numel(),
             "{}: tensors differ ({} {} vs {} {})", what, dtype_name(a.dtype()), a.shape().str(),
             dtype_name(b.dtype()), b.shape().str());
}

void check_float(const Tensor& t, const char* what) {
  KILN_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64,
             "{}: the CPU kernels take f32 or f64, got {}", what, dtype_name(t.dtype()));
}

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
  if (dx) gemm<T>(false, false, n, in, out, T(1), dyp, out, w.data<T>(), in, T(0),
                  dx->data<T>(), in);
}

}  // namespace

void CpuOps::matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
                    float alpha, float beta) {
  KILN_CHECK(a.ndim() == 2 && b.ndim() == 2 && c.ndim() == 2, "matmul takes 2-D tensors, got "
             "{} {} {}", a.shape().str(), b.shape().str(), c.shape().str());
  cpu::check_float(a, "matmul");
  KILN_CHECK(a.dtype() == b.dtype() && a.dtype() == c.dtype(), "matmul: mixed dtypes");
  int64_t m = trans_a ? a.dim(1) : a.dim(0), k = trans_a ? a.dim(0) : a.dim(1);
  int64_t kb = trans_b ? b.dim(1) : b.dim(0), n = trans_b ? b.dim(0) : b.dim(1);
  KILN_CHECK(k == kb && c.dim(0) == m && c.dim(1) == n, "matmul shapes: op(a) {}x{}, op(b) {}x{}, "
             "c {}", m, k, kb, n, c.shape().str());
  if (a.dtype() == DType::f32) {
    gemm<float>(trans_a, trans_b, m, n, k, alpha, a.data<float>(), a.dim(1), b.data<float>(),
                b.dim(1), beta, c.data<float>(), n);
  } else {
    gemm<double>(trans_a, trans_b, m, n, k, alpha, a.data<double>(), a.dim(1), b.data<double>(),
                 b.dim(1), beta, c.data<double>(), n);
  }
}

void CpuOps::linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  cpu::check_float(x, "linear_forward");
  KILN_CHECK(w.ndim() == 2 && x.numel() == x.dim(0) * w.dim(1) && b.numel() == w.dim(0) &&
                 y.numel() == x.dim(0) * w.dim(0),
             "linear_forward shapes: x {}, w {}, b {}, y {}", x.shape().str(), w.shape().str(),
             b.shape().str(), y.shape().str());
  if (x.dtype() == DType::f32) linear_fwd<float>(x, w, b, y);
  else linear_fwd<double>(x, w, b, y);
}

void CpuOps::linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                             Tensor& dw, Tensor& db) {
  cpu::check_float(x, "linear_backward");
  KILN_CHECK(dy.numel() == x.dim(0) * w.dim(0) && dw.numel() == w.numel() &&
                 db.numel() == w.dim(0) && (!dx || dx->numel() == x.numel()),
             "linear_backward shapes: x {}, w {}, dy {}", x.shape().str(), w.shape().str(),
             dy.shape().str());
  if (x.dtype() == DType::f32) linear_bwd<float>(x, w, dy, dx, dw, db);
  else linear_bwd<double>(x, w, dy, dx, dw, db);
}

}  // namespace kiln
