// Argument checks shared by every Ops backend, so that each op rejects the same bad arguments
// with the same message (and the same file:line) whatever device runs it. A backend calls the
// op's shared check first, then check_kernel_dtype for the float types its kernels compute in.
// Each check returns the geometry it validated. Token values (embedding) are data, not
// arguments: only the CPU, which can read them without a device synchronisation, checks them.
#pragma once

#include <cstdint>

#include "core/ops.h"

namespace kiln {

// The float dtypes a backend's kernels compute in, named in the message when a tensor has
// another.
struct KernelFloats {
  const char* backend;  // "CPU", "CUDA"
  bool f64;             // the CPU's f64 kernels (finite-difference tests)
  bool half;            // bf16 and f16
};
inline constexpr KernelFloats kCpuFloats{"CPU", true, false};
inline constexpr KernelFloats kCudaFloats{"CUDA", false, true};
void check_kernel_dtype(const Tensor& t, const char* what, const KernelFloats& k);

// Same dtype and element count.
void check_same(const Tensor& a, const Tensor& b, const char* what);
// A gradient or output that accumulates across micro-batches (dw, db, dwte, matmul's c): the
// operands' dtype, or f32 when the operands are 16-bit (mixed precision keeps f32 gradients).
// So a backend that takes only f32 and f64 always sees matching dtypes.
void check_accum_dtype(const Tensor& acc, const Tensor& operand, const char* what,
                       const char* name);

struct MatmulShape {
  int64_t m, n, k;
};
struct LinearShape {
  int64_t n, in, out;
};
struct ConvShape {
  int64_t n, c, h, w, o, kh, kw, ho, wo;
};
struct EmbeddingShape {
  int64_t B, T, C;
};
struct RowsShape {
  int64_t N, C;  // layernorm: N rows of C
};
struct AttentionShape {
  int64_t B, T, C, H;
};

MatmulShape check_matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                         const Tensor& c);
LinearShape check_linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y);
LinearShape check_linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy,
                                  const Tensor* dx, const Tensor& dw, const Tensor& db);
ConvShape check_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                       const Conv2dParams& p);
ConvShape check_conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy,
                                const Tensor* dx, const Tensor& dw, const Tensor& db,
                                const Conv2dParams& p);
void check_maxpool2d(const Tensor& x, const Tensor& y, const Tensor& argmax, int64_t kernel,
                     int64_t stride);
void check_maxpool2d_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx);
void check_unary(const Tensor& x, const Tensor& y, const char* what);
void check_unary_backward(const Tensor& x, const Tensor& dy, const Tensor& dx, const char* what);
// Returns the elements per sample.
int64_t check_dropout(const Tensor& x, const Tensor& y, const Tensor& mask, float p);
void check_dropout_backward(const Tensor& dy, const Tensor& mask, const Tensor& dx, float p);
void check_softmax_xent(const Tensor& logits, const Tensor& labels, const Tensor* dlogits,
                        const Tensor& stats);
EmbeddingShape check_embedding(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                               const Tensor& y);
EmbeddingShape check_embedding_backward(const Tensor& tokens, const Tensor& dy, const Tensor& dwte,
                                        const Tensor& dwpe);
RowsShape check_layernorm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                          const Tensor& mean, const Tensor& rstd);
RowsShape check_layernorm_backward(const Tensor& x, const Tensor& w, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                                   const Tensor& dw, const Tensor& db);
AttentionShape check_attention(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                               int64_t n_head);
AttentionShape check_attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                        const Tensor& dout, const Tensor& dqkv, int64_t n_head);
void check_add(const Tensor& a, const Tensor& b, const Tensor& y);
void check_optimizer_f32(const Tensor& param, const Tensor& grad, const Tensor& s1,
                         const Tensor* s2, const char* what);
void check_cast(const Tensor& src, const Tensor& dst);

}  // namespace kiln
