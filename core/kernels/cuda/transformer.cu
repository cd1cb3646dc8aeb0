// Transformer kernels: embeddings, layer normalisation, causal attention. Straightforward
// kernels, f32 math; attention keeps one query row's scores in shared memory (T floats), so it
// is O(T^2) work per head without a T x T buffer in global memory.
#include <cfloat>

#include "core/kernels/cuda/common.cuh"
#include "core/kernels/cuda/kernels.h"

namespace kiln::cuda {

namespace {

template <typename G>
__device__ __forceinline__ void accumulate(G* p, float v) {
  atomicAdd(p, from_f32<G>(v));
}

template <typename T>
__global__ void embedding_fwd_kernel(const int32_t* __restrict__ tok, const T* __restrict__ wte,
                                     const T* __restrict__ wpe, T* __restrict__ y, int64_t T_,
                                     int64_t C, int64_t V) {
  const int64_t bt = blockIdx.x, t = bt % T_;
  const int32_t id = tok[bt];
  if (id < 0 || id >= V) {
    // NaN makes the loss non-finite, which the trainer reports, instead of reading past wte.
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      y[bt * C + c] = from_f32<T>(__int_as_float(0x7fc00000));
    }
    return;
  }
  const T* e = wte + static_cast<int64_t>(id) * C;
  const T* p = wpe + t * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    y[bt * C + c] = from_f32<T>(to_f32(e[c]) + to_f32(p[c]));
  }
}

// Token rows: atomics, because a token may repeat within the batch.
template <typename T, typename G>
__global__ void embedding_bwd_tokens(const int32_t* __restrict__ tok, const T* __restrict__ dy,
                                     G* __restrict__ dwte, int64_t C, int64_t V) {
  const int64_t bt = blockIdx.x;
  const int32_t id = tok[bt];
  if (id < 0 || id >= V) return;
  G* row = dwte + static_cast<int64_t>(id) * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) accumulate(row + c, to_f32(dy[bt * C + c]));
}

// Position rows: one block per position sums over the batch; no races.
template <typename T, typename G>
__global__ void embedding_bwd_positions(const T* __restrict__ dy, G* __restrict__ dwpe, int64_t B,
                                        int64_t T_, int64_t C) {
  const int64_t t = blockIdx.x;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float sum = 0.f;
    for (int64_t b = 0; b < B; ++b) sum += to_f32(dy[(b * T_ + t) * C + c]);
    dwpe[t * C + c] = from_f32<G>(to_f32(dwpe[t * C + c]) + sum);
  }
}

template <typename T>
__global__ void layernorm_fwd_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                     const T* __restrict__ b, T* __restrict__ y,
                                     T* __restrict__ mean_out, T* __restrict__ rstd_out, int64_t C,
                                     float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * C;
  float sum = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) sum += to_f32(xr[c]);
  const float mean = block_sum(sum, scratch) / static_cast<float>(C);
  float sq = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float d = to_f32(xr[c]) - mean;
    sq += d * d;
  }
  const float rstd = rsqrtf(block_sum(sq, scratch) / static_cast<float>(C) + eps);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float xh = (to_f32(xr[c]) - mean) * rstd;
    y[row * C + c] = from_f32<T>(xh * to_f32(w[c]) + to_f32(b[c]));
  }
  if (threadIdx.x == 0) {
    mean_out[row] = from_f32<T>(mean);
    rstd_out[row] = from_f32<T>(rstd);
  }
}

// dx of one row: rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w.
template <typename T>
__global__ void layernorm_bwd_dx(const T* __restrict__ x, const T* __restrict__ w,
                                 const T* __restrict__ mean, const T* __restrict__ rstd,
                                 const T* __restrict__ dy, T* __restrict__ dx, int64_t C,
                                 bool accumulate_dx) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float mu = to_f32(mean[row]), rs = to_f32(rstd[row]);
  float sg = 0.f, sgx = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float g = to_f32(dy[row * C + c]) * to_f32(w[c]);
    sg += g;
    sgx += g * (to_f32(x[row * C + c]) - mu) * rs;
  }
  const float mg = block_sum(sg, scratch) / static_cast<float>(C);
  const float mgx = block_sum(sgx, scratch) / static_cast<float>(C);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float xh = (to_f32(x[row * C + c]) - mu) * rs;
    const float g = to_f32(dy[row * C + c]) * to_f32(w[c]);
    float v = rs * (g - mg - xh * mgx);
    if (accumulate_dx) v += to_f32(dx[row * C + c]);
    dx[row * C + c] = from_f32<T>(v);
  }
}

// dw, db: 32 columns per block, rows spread over the block's 8 rows of threads.
template <typename T, typename G>
__global__ void layernorm_bwd_params(const T* __restrict__ x, const T* __restrict__ mean,
                                     const T* __restrict__ rstd, const T* __restrict__ dy,
                                     G* __restrict__ dw, G* __restrict__ db, int64_t N, int64_t C) {
  __shared__ float acc_w[8][33], acc_b[8][33];
  const int64_t c = blockIdx.x * 32 + threadIdx.x;
  float sw = 0.f, sb = 0.f;
  if (c < C) {
    for (int64_t r = threadIdx.y; r < N; r += blockDim.y) {
      const float g = to_f32(dy[r * C + c]);
      sw += g * (to_f32(x[r * C + c]) - to_f32(mean[r])) * to_f32(rstd[r]);
      sb += g;
    }
  }
  acc_w[threadIdx.y][threadIdx.x] = sw;
  acc_b[threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float tw = 0.f, tb = 0.f;
    for (int k = 0; k < static_cast<int>(blockDim.y); ++k) {
      tw += acc_w[k][threadIdx.x];
      tb += acc_b[k][threadIdx.x];
    }
    dw[c] = from_f32<G>(to_f32(dw[c]) + tw);
    db[c] = from_f32<G>(to_f32(db[c]) + tb);
  }
}

// One block per (query row i, batch b * head h). Scores of row i live in shared memory.
template <typename T>
__global__ void attention_fwd_kernel(const T* __restrict__ qkv, T* __restrict__ out,
                                     T* __restrict__ lse, int64_t T_, int64_t C, int64_t H) {
  extern __shared__ float smem[];
  float* scores = smem;    // T_
  float* red = smem + T_;  // 32
  const int64_t i = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, D = C / H;
  const float scale = rsqrtf(static_cast<float>(D));
  const T* q = qkv + (b * T_ + i) * 3 * C + h * D;
  float mx = -FLT_MAX;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
    const T* k = qkv + (b * T_ + j) * 3 * C + C + h * D;
    float s = 0.f;
    for (int64_t d = 0; d < D; ++d) s += to_f32(q[d]) * to_f32(k[d]);
    s *= scale;
    scores[j] = s;
    mx = fmaxf(mx, s);
  }
  mx = warp_max(mx);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x + 31) / 32 ? red[threadIdx.x] : -FLT_MAX;
    v = warp_max(v);
    if (threadIdx.x == 0) red[0] = v;
  }
  __syncthreads();
  mx = red[0];
  __syncthreads();
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
    const float e = __expf(scores[j] - mx);
    scores[j] = e;
    sum += e;
  }
  sum = block_sum(sum, red);
  const float inv = 1.f / sum;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int64_t j = 0; j <= i; ++j) {
      acc += scores[j] * to_f32(qkv[(b * T_ + j) * 3 * C + 2 * C + h * D + d]);
    }
    out[(b * T_ + i) * C + h * D + d] = from_f32<T>(acc * inv);
  }
  if (threadIdx.x == 0) lse[bh * T_ + i] = from_f32<T>(mx + logf(sum));
}

// Backward of one query row: dq written; dk and dv accumulated with atomics into f32.
template <typename T>
__global__ void attention_bwd_kernel(const T* __restrict__ qkv, const T* __restrict__ out,
                                     const T* __restrict__ lse, const T* __restrict__ dout,
                                     T* __restrict__ dqkv, float* __restrict__ kv_acc, int64_t T_,
                                     int64_t C, int64_t H) {
  extern __shared__ float smem[];
  float* ds = smem;      // T_: dS of row i
  float* p = smem + T_;  // T_: probabilities of row i
  float* red = p + T_;   // 32
  const int64_t i = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H, D = C / H;
  const float scale = rsqrtf(static_cast<float>(D));
  const int64_t row = (b * T_ + i);
  const T* q = qkv + row * 3 * C + h * D;
  const T* go = dout + row * C + h * D;
  const float l = to_f32(lse[bh * T_ + i]);
  float dd = 0.f;  // D_i = dout_i . out_i
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    dd += to_f32(go[d]) * to_f32(out[row * C + h * D + d]);
  }
  dd = block_sum(dd, red);
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
    const T* k = qkv + (b * T_ + j) * 3 * C + C + h * D;
    const T* v = qkv + (b * T_ + j) * 3 * C + 2 * C + h * D;
    float s = 0.f, dp = 0.f;
    for (int64_t d = 0; d < D; ++d) {
      s += to_f32(q[d]) * to_f32(k[d]);
      dp += to_f32(go[d]) * to_f32(v[d]);
    }
    const float pj = __expf(s * scale - l);
    p[j] = pj;
    ds[j] = pj * (dp - dd);
  }
  __syncthreads();
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int64_t j = 0; j <= i; ++j) {
      acc += ds[j] * to_f32(qkv[(b * T_ + j) * 3 * C + C + h * D + d]);
    }
    dqkv[row * 3 * C + h * D + d] = from_f32<T>(acc * scale);
  }
  // kv_acc row layout: (B, T, 2C) = [dk | dv].
  for (int64_t j = 0; j <= i; ++j) {
    float* acc_row = kv_acc + (b * T_ + j) * 2 * C + h * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      atomicAdd(acc_row + d, ds[j] * scale * to_f32(q[d]));
      atomicAdd(acc_row + C + d, p[j] * to_f32(go[d]));
    }
  }
}

template <typename T>
__global__ void attention_bwd_finish(const float* __restrict__ kv_acc, T* __restrict__ dqkv,
                                     int64_t rows, int64_t C) {
  const int64_t total = rows * 2 * C;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t r = e / (2 * C), c = e % (2 * C);
    dqkv[r * 3 * C + C + c] = from_f32<T>(kv_acc[e]);
  }
}

unsigned row_threads(int64_t C) { return C >= 256 ? 256 : (C >= 128 ? 128 : 32); }

// Dynamic shared memory above 48 KiB needs an opt-in per kernel (up to 227 KiB on Hopper). A
// failure here shows up as the launch's error, which the caller checks.
template <typename Kernel>
void allow_shared_memory(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024) {
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(bytes));
  }
}

}  // namespace

void embedding_forward(DType dt, const int32_t* tokens, const void* wte, const void* wpe, void* y,
                       int64_t B, int64_t T, int64_t C, int64_t V, cudaStream_t s) {
  if (B * T == 0) return;
  dispatch_float(dt, [&](auto t) {
    using E = decltype(t);
    embedding_fwd_kernel<E><<<static_cast<unsigned>(B * T), row_threads(C), 0, s>>>(
        tokens, static_cast<const E*>(wte), static_cast<const E*>(wpe), static_cast<E*>(y), T, C,
        V);
  });
}

void embedding_backward(DType dt, DType gdt, const int32_t* tokens, const void* dy, void* dwte,
                        void* dwpe, int64_t B, int64_t T, int64_t C, int64_t V, cudaStream_t s) {
  if (B * T == 0) return;
  dispatch_float(dt, [&](auto t) {
    dispatch_float(gdt, [&](auto g) {
      using E = decltype(t);
      using G = decltype(g);
      embedding_bwd_tokens<E, G><<<static_cast<unsigned>(B * T), row_threads(C), 0, s>>>(
          tokens, static_cast<const E*>(dy), static_cast<G*>(dwte), C, V);
      embedding_bwd_positions<E, G><<<static_cast<unsigned>(T), row_threads(C), 0, s>>>(
          static_cast<const E*>(dy), static_cast<G*>(dwpe), B, T, C);
    });
  });
}

void layernorm_forward(DType dt, const void* x, const void* w, const void* b, void* y, void* mean,
                       void* rstd, int64_t N, int64_t C, float eps, cudaStream_t s) {
  if (N == 0) return;
  dispatch_float(dt, [&](auto t) {
    using E = decltype(t);
    layernorm_fwd_kernel<E><<<static_cast<unsigned>(N), row_threads(C), 0, s>>>(
        static_cast<const E*>(x), static_cast<const E*>(w), static_cast<const E*>(b),
        static_cast<E*>(y), static_cast<E*>(mean), static_cast<E*>(rstd), C, eps);
  });
}

void layernorm_backward(DType dt, DType gdt, const void* x, const void* w, const void* mean,
                        const void* rstd, const void* dy, void* dx, void* dw, void* db, int64_t N,
                        int64_t C, bool accumulate_dx, cudaStream_t s) {
  if (N == 0) return;
  dispatch_float(dt, [&](auto t) {
    dispatch_float(gdt, [&](auto g) {
      using E = decltype(t);
      using G = decltype(g);
      layernorm_bwd_dx<E><<<static_cast<unsigned>(N), row_threads(C), 0, s>>>(
          static_cast<const E*>(x), static_cast<const E*>(w), static_cast<const E*>(mean),
          static_cast<const E*>(rstd), static_cast<const E*>(dy), static_cast<E*>(dx), C,
          accumulate_dx);
      layernorm_bwd_params<E, G><<<static_cast<unsigned>((C + 31) / 32), dim3(32, 8), 0, s>>>(
          static_cast<const E*>(x), static_cast<const E*>(mean), static_cast<const E*>(rstd),
          static_cast<const E*>(dy), static_cast<G*>(dw), static_cast<G*>(db), N, C);
    });
  });
}

void attention_forward(DType dt, const void* qkv, void* out, void* lse, int64_t B, int64_t T,
                       int64_t C, int64_t H, cudaStream_t s) {
  if (B * T == 0) return;
  const size_t smem = (static_cast<size_t>(T) + 32) * sizeof(float);
  dispatch_float(dt, [&](auto t) {
    using E = decltype(t);
    allow_shared_memory(attention_fwd_kernel<E>, smem);
    attention_fwd_kernel<E>
        <<<dim3(static_cast<unsigned>(T), static_cast<unsigned>(B * H)), 128, smem, s>>>(
            static_cast<const E*>(qkv), static_cast<E*>(out), static_cast<E*>(lse), T, C, H);
  });
}

void attention_backward(DType dt, const void* qkv, const void* out, const void* lse,
                        const void* dout, void* dqkv, float* kv_acc, int64_t B, int64_t T,
                        int64_t C, int64_t H, cudaStream_t s) {
  if (B * T == 0) return;
  const size_t smem = (2 * static_cast<size_t>(T) + 32) * sizeof(float);
  dispatch_float(dt, [&](auto t) {
    using E = decltype(t);
    allow_shared_memory(attention_bwd_kernel<E>, smem);
    attention_bwd_kernel<E>
        <<<dim3(static_cast<unsigned>(T), static_cast<unsigned>(B * H)), 128, smem, s>>>(
            static_cast<const E*>(qkv), static_cast<const E*>(out), static_cast<const E*>(lse),
            static_cast<const E*>(dout), static_cast<E*>(dqkv), kv_acc, T, C, H);
    attention_bwd_finish<E>
        <<<blocks_for(B * T * 2 * C), kThreads, 0, s>>>(kv_acc, static_cast<E*>(dqkv), B * T, C);
  });
}

}  // namespace kiln::cuda
