// CPU softmax cross-entropy fused with its gradient.
#include <cmath>

#include "core/kernels/cpu/cpu_math.h"
#include "core/kernels/cpu/cpu_ops.h"

namespace kiln {

namespace {

template <typename T>
void xent(const T* logits, const int32_t* labels, T* dlogits, int64_t n, int64_t c, T scale,
          double* stats) {
  double loss = 0, correct = 0;
  int bad_label = -1;
#pragma omp parallel for reduction(+ : loss, correct) reduction(max : bad_label) if (n * c > 65536)
  for (int64_t r = 0; r < n; ++r) {
    const T* z = logits + r * c;
    const int32_t y = labels[r];
    if (y < 0 || y >= c) {
      bad_label = std::max(bad_label, static_cast<int>(r));
      continue;
    }
    T zmax = z[0];
    int64_t arg = 0;
    for (int64_t j = 1; j < c; ++j) {
      if (z[j] > zmax) {
        zmax = z[j];
        arg = j;
      }
    }
    T sum = 0;
    // The exponentials go to dlogits (when asked for) so they are computed once.
    if (dlogits) {
      T* d = dlogits + r * c;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < c; ++j) sum += (d[j] = cpu::exp_approx(z[j] - zmax));
      const T k = scale / sum;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) d[j] *= k;
      d[y] -= scale;
    } else {
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < c; ++j) sum += cpu::exp_approx(z[j] - zmax);
    }
    const T lse = zmax + std::log(sum);
    loss += static_cast<double>(lse - z[y]);
    correct += (arg == y) ? 1.0 : 0.0;
  }
  KILN_CHECK(bad_label < 0, "label {} of row {} is outside [0, {})", labels[bad_label], bad_label,
             c);
  stats[0] = loss;
  stats[1] = correct;
}

}  // namespace

void CpuOps::softmax_xent(const Tensor& logits, const Tensor& labels, Tensor* dlogits,
                          float grad_scale, Tensor& stats) {
  check_softmax_xent(logits, labels, dlogits, stats);
  const int64_t n = logits.dim(0), c = logits.dim(1);
  KILN_FLOAT_CALL(
      logits, "softmax_xent",
      xent<T>(logits.data<T>(), labels.data<int32_t>(), dlogits ? dlogits->data<T>() : nullptr, n,
              c, static_cast<T>(grad_scale), stats.data<double>()));
}

}  // namespace kiln
