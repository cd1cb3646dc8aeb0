// CPU causal multi-head self-attention. Each (batch, head) pair is one task for one thread; a
// task walks blocks of kRowBlock query rows, so a thread never holds more than one head's score
// rows of one block (plus their gradient in backward): memory stays O(threads x kRowBlock x T)
// however long the sequence. The products are OpenBLAS GEMMs on strided views of qkv (no
// copies), single-threaded inside the parallel region; blocks skip the keys a causal row cannot
// see. Backward recomputes the probabilities from the saved log-sum-exp of each row.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/kernels/cpu/cpu_math.h"
#include "core/kernels/cpu/cpu_ops.h"

namespace kiln {

namespace {

constexpr int64_t kRowBlock = 64;

struct Dims {
  int64_t B, Tn, C, nh, hs;
};

template <typename T>
void attn_fwd(const T* qkv, T* out, T* lse, const Dims& d, T* scratch, int threads) {
  const int64_t Tn = d.Tn, C = d.C, C3 = 3 * d.C, hs = d.hs;
  const T scale = T(1) / std::sqrt(static_cast<T>(hs));
#pragma omp parallel num_threads(threads)
  {
    T* S = scratch + static_cast<int64_t>(omp_get_thread_num()) * kRowBlock * Tn;
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < d.B * d.nh; ++bh) {
      const int64_t b = bh / d.nh, h = bh % d.nh;
      const T* q = qkv + b * Tn * C3 + h * hs;  // (T, hs), row stride 3C
      const T* k = q + C;
      const T* v = q + 2 * C;
      T* o = out + b * Tn * C + h * hs;  // (T, hs), row stride C
      T* l = lse + bh * Tn;
      for (int64_t i0 = 0; i0 < Tn; i0 += kRowBlock) {
        const int64_t i1 = std::min(Tn, i0 + kRowBlock), rows = i1 - i0;
        // S (rows, i1) = q[i0:i1] k[0:i1]^T / sqrt(hs): the keys these rows may see.
        cpu::gemm<T>(false, true, rows, i1, hs, scale, q + i0 * C3, C3, k, C3, T(0), S, i1);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t n = i0 + r + 1;  // row i sees keys [0, i]
          T* s = S + r * i1;
          T mx = s[0];
          for (int64_t j = 1; j < n; ++j) mx = std::max(mx, s[j]);
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < n; ++j) {
            s[j] = cpu::exp_approx(s[j] - mx);
            sum += s[j];
          }
          const T inv = T(1) / sum;
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) s[j] *= inv;
          for (int64_t j = n; j < i1; ++j) s[j] = T(0);
          l[i0 + r] = mx + std::log(sum);
        }
        // o[i0:i1] = P (rows, i1) v[0:i1]
        cpu::gemm<T>(false, false, rows, hs, i1, T(1), S, i1, v, C3, T(0), o + i0 * C, C);
      }
    }
  }
}

// With P = softmax(S) recomputed from lse, dP = dO v^T and D_i = dO_i . O_i:
// dS = P * (dP - D), dq = dS k / sqrt(hs), dk = dS^T q / sqrt(hs), dv = P^T dO.
template <typename T>
void attn_bwd(const T* qkv, const T* out, const T* lse, const T* dout, T* dqkv, const Dims& d,
              T* scratch, int threads) {
  const int64_t Tn = d.Tn, C = d.C, C3 = 3 * d.C, hs = d.hs;
  const T scale = T(1) / std::sqrt(static_cast<T>(hs));
#pragma omp parallel num_threads(threads)
  {
    T* P = scratch + static_cast<int64_t>(omp_get_thread_num()) * 2 * kRowBlock * Tn;
    T* dS = P + kRowBlock * Tn;
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < d.B * d.nh; ++bh) {
      const int64_t b = bh / d.nh, h = bh % d.nh;
      const T* q = qkv + b * Tn * C3 + h * hs;
      const T* k = q + C;
      const T* v = q + 2 * C;
      const T* o = out + b * Tn * C + h * hs;
      const T* g = dout + b * Tn * C + h * hs;
      const T* l = lse + bh * Tn;
      T* dq = dqkv + b * Tn * C3 + h * hs;
      T* dk = dq + C;
      T* dv = dq + 2 * C;
      for (int64_t t = 0; t < Tn; ++t) {
        std::fill(dk + t * C3, dk + t * C3 + hs, T(0));
        std::fill(dv + t * C3, dv + t * C3 + hs, T(0));
      }
      for (int64_t i0 = 0; i0 < Tn; i0 += kRowBlock) {
        const int64_t i1 = std::min(Tn, i0 + kRowBlock), rows = i1 - i0;
        cpu::gemm<T>(false, true, rows, i1, hs, scale, q + i0 * C3, C3, k, C3, T(0), P, i1);
        cpu::gemm<T>(false, true, rows, i1, hs, T(1), g + i0 * C, C, v, C3, T(0), dS, i1);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r, n = i + 1;
          T* p = P + r * i1;
          T* ds = dS + r * i1;
          const T li = l[i];
          T di = 0;
#pragma omp simd reduction(+ : di)
          for (int64_t c = 0; c < hs; ++c) di += g[i * C + c] * o[i * C + c];
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) {
            p[j] = cpu::exp_approx(p[j] - li);
            ds[j] = p[j] * (ds[j] - di);
          }
          for (int64_t j = n; j < i1; ++j) p[j] = ds[j] = T(0);
        }
        // dq[i0:i1] = dS k[0:i1] / sqrt(hs); dk[0:i1] += dS^T q[i0:i1] / sqrt(hs);
        // dv[0:i1] += P^T dO[i0:i1]
        cpu::gemm<T>(false, false, rows, hs, i1, scale, dS, i1, k, C3, T(0), dq + i0 * C3, C3);
        cpu::gemm<T>(true, false, i1, hs, rows, scale, dS, i1, q + i0 * C3, C3, T(1), dk, C3);
        cpu::gemm<T>(true, false, i1, hs, rows, T(1), P, i1, g + i0 * C, C, T(1), dv, C3);
      }
    }
  }
}

Dims dims(const AttentionShape& s) { return Dims{s.B, s.T, s.C, s.H, s.C / s.H}; }

}  // namespace

void CpuOps::attention_forward(const Tensor& qkv, Tensor& out, Tensor& lse, int64_t n_head) {
  const Dims d = dims(check_attention(qkv, out, lse, n_head));
  const int threads = omp_get_max_threads();
  KILN_FLOAT_CALL(qkv, "attention_forward", {
    T* s = scratch<T>(static_cast<size_t>(threads * kRowBlock * d.Tn));
    attn_fwd<T>(qkv.data<T>(), out.data<T>(), lse.data<T>(), d, s, threads);
  });
}

void CpuOps::attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                const Tensor& dout, Tensor& dqkv, int64_t n_head) {
  const Dims d = dims(check_attention_backward(qkv, out, lse, dout, dqkv, n_head));
  const int threads = omp_get_max_threads();
  KILN_FLOAT_CALL(qkv, "attention_backward", {
    T* s = scratch<T>(static_cast<size_t>(threads * 2 * kRowBlock * d.Tn));
    attn_bwd<T>(qkv.data<T>(), out.data<T>(), lse.data<T>(), dout.data<T>(), dqkv.data<T>(), d, s,
                threads);
  });
}

}  // namespace kiln
