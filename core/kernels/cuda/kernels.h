// Launchers of Kiln's own CUDA kernels, callable from host C++ (no CUDA syntax here). Every
// launcher queues work on `stream` and returns at once; the caller checks cudaGetLastError.
// Float tensors may be f32, bf16 or f16 (`dt`); the math is done in f32. Pointers may be views
// at any element offset: vectorised paths are taken only when every pointer is 16-byte aligned.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "core/ops.h"

namespace kiln::cuda {

void relu_forward(DType dt, const void* x, void* y, int64_t n, cudaStream_t s);
void relu_backward(DType dt, const void* y, const void* dy, void* dx, int64_t n, cudaStream_t s);
void gelu_forward(DType dt, const void* x, void* y, int64_t n, cudaStream_t s);
void gelu_backward(DType dt, const void* x, const void* dy, void* dx, int64_t n, cudaStream_t s);
void dropout_forward(DType dt, const void* x, void* y, uint8_t* mask, int64_t n, int64_t per_sample,
                     float p, const DropoutKey& key, cudaStream_t s);
void dropout_backward(DType dt, const void* dy, const uint8_t* mask, void* dx, int64_t n, float p,
                      cudaStream_t s);

// y (rows, cols) += bias (cols) broadcast over rows / over planes of (n, c, hw).
void add_bias_channels(DType dt, void* y, const void* bias, int64_t n, int64_t c, int64_t hw,
                       cudaStream_t s);
// db (cols) += column sums of dy (rows, cols); db is dy's dtype or f32 (`gdt`).
void bias_grad_rows(DType dt, DType gdt, const void* dy, void* db, int64_t rows, int64_t cols,
                    cudaStream_t s);
// db (c) += sums over (n, hw) of dy (n, c, hw); db is dy's dtype or f32 (`gdt`).
void bias_grad_channels(DType dt, DType gdt, const void* dy, void* db, int64_t n, int64_t c,
                        int64_t hw, cudaStream_t s);

void maxpool2d_forward(DType dt, const void* x, void* y, int32_t* argmax, int64_t planes, int64_t h,
                       int64_t w, int64_t ho, int64_t wo, int64_t k, int64_t stride,
                       cudaStream_t s);
// dx is zeroed, then each dy adds into the element its argmax names (atomically: windows may
// overlap, and the op is not told the kernel size and stride).
void maxpool2d_backward(DType dt, const void* dy, const int32_t* argmax, void* dx, int64_t planes,
                        int64_t hw, int64_t ohw, cudaStream_t s);

// stats (f64[2], zeroed by the caller) receives {loss sum, correct rows}; dlogits may be null.
// A label outside [0, classes) makes the loss NaN (labels are not read on the host).
void softmax_xent(DType dt, const void* logits, const int32_t* labels, void* dlogits, int64_t rows,
                  int64_t classes, float grad_scale, double* stats, cudaStream_t s);

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWArgs& a,
                cudaStream_t s);
void sgd_step(float* p, const float* g, float* buf, int64_t n, const SgdArgs& a, cudaStream_t s);

// out (f64[1]) receives the sum of squares; flag (i32[1]) is set to 1 when a non-finite value
// is seen (both must be zeroed first).
void sum_squares(DType dt, const void* x, int64_t n, double* out, cudaStream_t s);
void find_nonfinite(DType dt, const void* x, int64_t n, int32_t* flag, cudaStream_t s);
void scale(DType dt, void* x, float alpha, int64_t n, cudaStream_t s);
// dst = src converted between f32, bf16 and f16; dst += src when accumulate.
void convert(DType src_dt, const void* src, DType dst_dt, void* dst, int64_t n, bool accumulate,
             cudaStream_t s);

}  // namespace kiln::cuda

namespace kiln::cuda {

// Transformer ops (see core/ops.h for the contracts). Gradients of parameters (dwte, dwpe, dw,
// db) may be f32 while the activations are 16-bit.
// Tokens are not read on the host: one outside [0, V) gives a NaN row in forward and is skipped
// in backward, rather than reading or writing outside the tables.
void embedding_forward(DType dt, const int32_t* tokens, const void* wte, const void* wpe, void* y,
                       int64_t B, int64_t T, int64_t C, int64_t V, cudaStream_t s);
void embedding_backward(DType dt, DType gdt, const int32_t* tokens, const void* dy, void* dwte,
                        void* dwpe, int64_t B, int64_t T, int64_t C, int64_t V, cudaStream_t s);
void layernorm_forward(DType dt, const void* x, const void* w, const void* b, void* y, void* mean,
                       void* rstd, int64_t N, int64_t C, float eps, cudaStream_t s);
void layernorm_backward(DType dt, DType gdt, const void* x, const void* w, const void* mean,
                        const void* rstd, const void* dy, void* dx, void* dw, void* db, int64_t N,
                        int64_t C, bool accumulate_dx, cudaStream_t s);
// The longest sequence the attention kernels take: backward keeps 2T + 32 floats of one query
// row in shared memory (64 KiB at T = 8192, above the 48 KiB a launch gets without opting in).
constexpr int64_t kAttentionMaxT = 8192;
void attention_forward(DType dt, const void* qkv, void* out, void* lse, int64_t B, int64_t T,
                       int64_t C, int64_t H, cudaStream_t s);
// kv_acc: f32 scratch of B * T * 2C elements for the key and value gradients, zeroed by the
// caller.
void attention_backward(DType dt, const void* qkv, const void* out, const void* lse,
                        const void* dout, void* dqkv, float* kv_acc, int64_t B, int64_t T,
                        int64_t C, int64_t H, cudaStream_t s);
void add(DType dt, const void* a, const void* b, void* y, int64_t n, cudaStream_t s);

}  // namespace kiln::cuda
