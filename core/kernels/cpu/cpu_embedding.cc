// CPU token + position embedding (GPT): a gather in forward, a scatter-add in backward.
// Backward splits the channels among threads rather than the tokens, so that repeated tokens
// never race and the sums come out the same whatever the thread count.
#include <omp.h>

#include "core/kernels/cpu/cpu_ops.h"

namespace kiln {

namespace {

template <typename T>
void embed_f(const int32_t* tok, const T* wte, const T* wpe, T* y, int64_t B, int64_t Tn,
             int64_t C) {
#pragma omp parallel for if (B * Tn * C > 32768)
  for (int64_t r = 0; r < B * Tn; ++r) {
    const T* e = wte + static_cast<int64_t>(tok[r]) * C;
    const T* p = wpe + (r % Tn) * C;
    T* out = y + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) out[c] = e[c] + p[c];
  }
}

template <typename T>
void embed_b(const int32_t* tok, const T* dy, T* dwte, T* dwpe, int64_t B, int64_t Tn, int64_t C) {
#pragma omp parallel if (B * Tn * C > 32768)
  {
    // Each thread owns a contiguous range of channels of every row.
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t c0 = C * t / nt, c1 = C * (t + 1) / nt;
    for (int64_t r = 0; r < B * Tn; ++r) {
      const T* g = dy + r * C;
      T* e = dwte + static_cast<int64_t>(tok[r]) * C;
      T* p = dwpe + (r % Tn) * C;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) {
        e[c] += g[c];
        p[c] += g[c];
      }
    }
  }
}

void check_tokens(const Tensor& tokens, int64_t vocab, const char* what) {
  KILN_CHECK(tokens.dtype() == DType::i32 && tokens.ndim() == 2,
             "{}: tokens must be (B, T) i32, got {} {}", what, dtype_name(tokens.dtype()),
             tokens.shape().str());
  const int32_t* t = tokens.data<int32_t>();
  for (int64_t i = 0; i < tokens.numel(); ++i) {
    KILN_CHECK(t[i] >= 0 && t[i] < vocab,
               "{}: token {} at position {} is outside the "
               "vocabulary [0, {})",
               what, t[i], i, vocab);
  }
}

}  // namespace

void CpuOps::embedding_forward(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                               Tensor& y) {
  KILN_CHECK(wte.ndim() == 2 && wpe.ndim() == 2 && wte.dim(1) == wpe.dim(1),
             "embedding_forward: wte {} and wpe {} must be (V, C) and (P, C)", wte.shape().str(),
             wpe.shape().str());
  check_tokens(tokens, wte.dim(0), "embedding_forward");
  const int64_t B = tokens.dim(0), Tn = tokens.dim(1), C = wte.dim(1);
  KILN_CHECK(Tn <= wpe.dim(0), "embedding_forward: {} positions but wpe has {}", Tn, wpe.dim(0));
  KILN_CHECK(y.numel() == B * Tn * C && y.dtype() == wte.dtype() && wpe.dtype() == wte.dtype(),
             "embedding_forward: y {} {} must be ({}, {}, {}) {}", dtype_name(y.dtype()),
             y.shape().str(), B, Tn, C, dtype_name(wte.dtype()));
  KILN_FLOAT_CALL(
      wte, "embedding_forward",
      embed_f<T>(tokens.data<int32_t>(), wte.data<T>(), wpe.data<T>(), y.data<T>(), B, Tn, C));
}

void CpuOps::embedding_backward(const Tensor& tokens, const Tensor& dy, Tensor& dwte,
                                Tensor& dwpe) {
  KILN_CHECK(dwte.ndim() == 2 && dwpe.ndim() == 2 && dwte.dim(1) == dwpe.dim(1),
             "embedding_backward: dwte {} and dwpe {} must be (V, C) and (P, C)",
             dwte.shape().str(), dwpe.shape().str());
  check_tokens(tokens, dwte.dim(0), "embedding_backward");
  const int64_t B = tokens.dim(0), Tn = tokens.dim(1), C = dwte.dim(1);
  KILN_CHECK(Tn <= dwpe.dim(0) && dy.numel() == B * Tn * C && dy.dtype() == dwte.dtype() &&
                 dwpe.dtype() == dwte.dtype(),
             "embedding_backward: dy {} {} does not match tokens {} and dwte {}",
             dtype_name(dy.dtype()), dy.shape().str(), tokens.shape().str(), dwte.shape().str());
  KILN_FLOAT_CALL(
      dwte, "embedding_backward",
      embed_b<T>(tokens.data<int32_t>(), dy.data<T>(), dwte.data<T>(), dwpe.data<T>(), B, Tn, C));
}

}  // namespace kiln
