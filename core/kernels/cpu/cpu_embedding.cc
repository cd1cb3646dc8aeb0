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

// Token values are data on the device, so the shared checks cannot see them; the CPU reads them
// anyway and refuses one outside the table rather than reading past it.
void check_token_values(const Tensor& tokens, int64_t vocab, const char* what) {
  const int32_t* t = tokens.data<int32_t>();
  for (int64_t i = 0; i < tokens.numel(); ++i) {
    KILN_CHECK(t[i] >= 0 && t[i] < vocab,
               "{}: token {} at position {} is outside the vocabulary [0, {})", what, t[i], i,
               vocab);
  }
}

}  // namespace

void CpuOps::embedding_forward(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                               Tensor& y) {
  const EmbeddingShape s = check_embedding(tokens, wte, wpe, y);
  KILN_FLOAT_CALL(wte, "embedding_forward", {
    check_token_values(tokens, wte.dim(0), "embedding_forward");
    embed_f<T>(tokens.data<int32_t>(), wte.data<T>(), wpe.data<T>(), y.data<T>(), s.B, s.T, s.C);
  });
}

void CpuOps::embedding_backward(const Tensor& tokens, const Tensor& dy, Tensor& dwte,
                                Tensor& dwpe) {
  const EmbeddingShape s = check_embedding_backward(tokens, dy, dwte, dwpe);
  KILN_FLOAT_CALL(dy, "embedding_backward", {
    check_token_values(tokens, dwte.dim(0), "embedding_backward");
    embed_b<T>(tokens.data<int32_t>(), dy.data<T>(), dwte.data<T>(), dwpe.data<T>(), s.B, s.T, s.C);
  });
}

}  // namespace kiln
