// Shared argument checks of the Ops interface (see ops_check.h). Shapes are checked before
// dtypes, and every message names the op, the tensors' shapes or dtypes, and what was expected.
#include "core/ops_check.h"

namespace kiln {

namespace {

bool is_half(DType t) { return t == DType::bf16 || t == DType::f16; }

}  // namespace

void check_kernel_dtype(const Tensor& t, const char* what, const KernelFloats& k) {
  const DType d = t.dtype();
  const bool ok = d == DType::f32 || (k.f64 && d == DType::f64) || (k.half && is_half(d));
  KILN_CHECK(ok, "{}: the {} kernels take {}, got {}", what, k.backend,
             k.f64 ? (k.half ? "f32, f64, bf16 or f16" : "f32 or f64")
                   : (k.half ? "f32, bf16 or f16" : "f32"),
             dtype_name(d));
}

void check_same(const Tensor& a, const Tensor& b, const char* what) {
  KILN_CHECK(a.dtype() == b.dtype() && a.numel() == b.numel(),
             "{}: tensors differ ({} {} vs {} {})", what, dtype_name(a.dtype()), a.shape().str(),
             dtype_name(b.dtype()), b.shape().str());
}

void check_accum_dtype(const Tensor& acc, const Tensor& operand, const char* what,
                       const char* name) {
  const DType a = acc.dtype(), o = operand.dtype();
  KILN_CHECK(a == o || (a == DType::f32 && is_half(o)),
             "{}: {} is {} but the operands are {}; it must be {}{}", what, name, dtype_name(a),
             dtype_name(o), dtype_name(o), is_half(o) ? " or f32" : "");
}

MatmulShape check_matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                         const Tensor& c) {
  KILN_CHECK(a.ndim() == 2 && b.ndim() == 2 && c.ndim() == 2,
             "matmul takes 2-D tensors, got {} {} {}", a.shape().str(), b.shape().str(),
             c.shape().str());
  MatmulShape s{trans_a ? a.dim(1) : a.dim(0), trans_b ? b.dim(0) : b.dim(1),
                trans_a ? a.dim(0) : a.dim(1)};
  const int64_t kb = trans_b ? b.dim(1) : b.dim(0);
  KILN_CHECK(s.k == kb && c.dim(0) == s.m && c.dim(1) == s.n,
             "matmul shapes: op(a) {}x{}, op(b) {}x{}, c {}", s.m, s.k, kb, s.n, c.shape().str());
  KILN_CHECK(a.dtype() == b.dtype(), "matmul: a is {} but b is {}", dtype_name(a.dtype()),
             dtype_name(b.dtype()));
  check_accum_dtype(c, a, "matmul", "c");
  return s;
}

namespace {
LinearShape linear_geometry(const Tensor& x, const Tensor& w, const char* what) {
  KILN_CHECK(w.ndim() == 2 && x.ndim() >= 1, "{}: w {} must be (out, in) and x {} (N, in)", what,
             w.shape().str(), x.shape().str());
  return LinearShape{x.dim(0), w.dim(1), w.dim(0)};
}
}  // namespace

LinearShape check_linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  const LinearShape s = linear_geometry(x, w, "linear_forward");
  KILN_CHECK(x.numel() == s.n * s.in && b.numel() == s.out && y.numel() == s.n * s.out,
             "linear_forward shapes: x {}, w {}, b {}, y {}", x.shape().str(), w.shape().str(),
             b.shape().str(), y.shape().str());
  KILN_CHECK(x.dtype() == w.dtype() && y.dtype() == x.dtype() && b.dtype() == x.dtype(),
             "linear_forward: x, w, b and y must share a dtype (x is {})", dtype_name(x.dtype()));
  return s;
}

LinearShape check_linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy,
                                  const Tensor* dx, const Tensor& dw, const Tensor& db) {
  const LinearShape s = linear_geometry(x, w, "linear_backward");
  KILN_CHECK(x.numel() == s.n * s.in && dy.numel() == s.n * s.out && dw.numel() == w.numel() &&
                 db.numel() == s.out && (!dx || dx->numel() == x.numel()),
             "linear_backward shapes: x {}, w {}, dy {}, dw {}, db {}", x.shape().str(),
             w.shape().str(), dy.shape().str(), dw.shape().str(), db.shape().str());
  KILN_CHECK(x.dtype() == w.dtype() && dy.dtype() == x.dtype() && (!dx || dx->dtype() == x.dtype()),
             "linear_backward: x, w, dy and dx must share a dtype (x is {})",
             dtype_name(x.dtype()));
  check_accum_dtype(dw, x, "linear_backward", "dw");
  check_accum_dtype(db, x, "linear_backward", "db");
  return s;
}

namespace {
ConvShape conv_geometry(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  KILN_CHECK(x.ndim() == 4 && w.ndim() == 4 && w.dim(1) == x.dim(1),
             "conv2d: x {} and w {} must be (N, C, H, W) and (O, C, kh, kw)", x.shape().str(),
             w.shape().str());
  KILN_CHECK(p.stride >= 1 && p.pad >= 0, "conv2d: stride {} pad {}", p.stride, p.pad);
  ConvShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), w.dim(3), 0, 0};
  KILN_CHECK(s.kh <= s.h + 2 * p.pad && s.kw <= s.w + 2 * p.pad,
             "conv2d: kernel {}x{} larger than padded input {}x{}", s.kh, s.kw, s.h + 2 * p.pad,
             s.w + 2 * p.pad);
  s.ho = (s.h + 2 * p.pad - s.kh) / p.stride + 1;
  s.wo = (s.w + 2 * p.pad - s.kw) / p.stride + 1;
  return s;
}
}  // namespace

ConvShape check_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                       const Conv2dParams& p) {
  const ConvShape s = conv_geometry(x, w, p);
  KILN_CHECK(b.numel() == s.o && y.numel() == s.n * s.o * s.ho * s.wo,
             "conv2d_forward: b {} or y {} do not match ({}, {}, {}, {})", b.shape().str(),
             y.shape().str(), s.n, s.o, s.ho, s.wo);
  KILN_CHECK(x.dtype() == w.dtype() && y.dtype() == x.dtype() && b.dtype() == x.dtype(),
             "conv2d_forward: x, w, b and y must share a dtype (x is {})", dtype_name(x.dtype()));
  return s;
}

ConvShape check_conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy,
                                const Tensor* dx, const Tensor& dw, const Tensor& db,
                                const Conv2dParams& p) {
  const ConvShape s = conv_geometry(x, w, p);
  KILN_CHECK(dy.numel() == s.n * s.o * s.ho * s.wo && dw.numel() == w.numel() &&
                 db.numel() == s.o && (!dx || dx->numel() == x.numel()),
             "conv2d_backward: shapes of dy {}, dw {}, db {} do not match", dy.shape().str(),
             dw.shape().str(), db.shape().str());
  KILN_CHECK(x.dtype() == w.dtype() && dy.dtype() == x.dtype() && (!dx || dx->dtype() == x.dtype()),
             "conv2d_backward: x, w, dy and dx must share a dtype (x is {})",
             dtype_name(x.dtype()));
  check_accum_dtype(dw, x, "conv2d_backward", "dw");
  check_accum_dtype(db, x, "conv2d_backward", "db");
  return s;
}

void check_maxpool2d(const Tensor& x, const Tensor& y, const Tensor& argmax, int64_t kernel,
                     int64_t stride) {
  KILN_CHECK(
      x.ndim() == 4 && kernel >= 1 && stride >= 1 && x.dim(2) >= kernel && x.dim(3) >= kernel,
      "maxpool2d: x {} kernel {} stride {}", x.shape().str(), kernel, stride);
  const Shape expect{x.dim(0), x.dim(1), (x.dim(2) - kernel) / stride + 1,
                     (x.dim(3) - kernel) / stride + 1};
  KILN_CHECK(y.shape() == expect && argmax.shape() == expect && y.dtype() == x.dtype() &&
                 argmax.dtype() == DType::i32,
             "maxpool2d: y {} {} / argmax {} {} should be {} {} / i32", dtype_name(y.dtype()),
             y.shape().str(), dtype_name(argmax.dtype()), argmax.shape().str(),
             dtype_name(x.dtype()), expect.str());
}

void check_maxpool2d_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx) {
  KILN_CHECK(dx.ndim() == 4 && dy.ndim() == 4 && dy.shape() == argmax.shape() &&
                 dy.dim(0) == dx.dim(0) && dy.dim(1) == dx.dim(1) && dy.dtype() == dx.dtype() &&
                 argmax.dtype() == DType::i32,
             "maxpool2d_backward: dy {} {}, argmax {} {}, dx {} {}", dtype_name(dy.dtype()),
             dy.shape().str(), dtype_name(argmax.dtype()), argmax.shape().str(),
             dtype_name(dx.dtype()), dx.shape().str());
}

void check_unary(const Tensor& x, const Tensor& y, const char* what) { check_same(x, y, what); }

void check_unary_backward(const Tensor& x, const Tensor& dy, const Tensor& dx, const char* what) {
  check_same(x, dy, what);
  check_same(x, dx, what);
}

namespace {
void check_dropout_p(float p) {
  KILN_CHECK(p >= 0.0f && p < 1.0f, "dropout probability {} is outside [0, 1)", p);
}
}  // namespace

int64_t check_dropout(const Tensor& x, const Tensor& y, const Tensor& mask, float p) {
  check_same(x, y, "dropout_forward");
  KILN_CHECK(mask.dtype() == DType::u8 && mask.numel() == x.numel(),
             "dropout_forward: mask must be u8 with x's {} elements", x.numel());
  check_dropout_p(p);
  KILN_CHECK(x.ndim() >= 1, "dropout_forward: x needs a batch dimension");
  return x.dim(0) ? x.numel() / x.dim(0) : 0;
}

void check_dropout_backward(const Tensor& dy, const Tensor& mask, const Tensor& dx, float p) {
  check_same(dy, dx, "dropout_backward");
  KILN_CHECK(mask.dtype() == DType::u8 && mask.numel() == dy.numel(),
             "dropout_backward: mask must be u8 with dy's {} elements", dy.numel());
  check_dropout_p(p);
}

void check_softmax_xent(const Tensor& logits, const Tensor& labels, const Tensor* dlogits,
                        const Tensor& stats) {
  KILN_CHECK(logits.ndim() == 2 && labels.dtype() == DType::i32 && labels.numel() == logits.dim(0),
             "softmax_xent: logits {} need (N, C) and labels (N) of i32, got labels {} {}",
             logits.shape().str(), dtype_name(labels.dtype()), labels.shape().str());
  KILN_CHECK(stats.dtype() == DType::f64 && stats.numel() == 2, "softmax_xent: stats is f64[2]");
  if (dlogits) check_same(logits, *dlogits, "softmax_xent");
}

namespace {
EmbeddingShape embedding_geometry(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                                  const char* what) {
  KILN_CHECK(tokens.dtype() == DType::i32 && tokens.ndim() == 2,
             "{}: tokens must be (B, T) i32, got {} {}", what, dtype_name(tokens.dtype()),
             tokens.shape().str());
  KILN_CHECK(wte.ndim() == 2 && wpe.ndim() == 2 && wte.dim(1) == wpe.dim(1),
             "{}: token and position tables {} and {} must be (V, C) and (P, C)", what,
             wte.shape().str(), wpe.shape().str());
  const EmbeddingShape s{tokens.dim(0), tokens.dim(1), wte.dim(1)};
  KILN_CHECK(s.T <= wpe.dim(0), "{}: {} positions but the position table has {}", what, s.T,
             wpe.dim(0));
  return s;
}
}  // namespace

EmbeddingShape check_embedding(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                               const Tensor& y) {
  const EmbeddingShape s = embedding_geometry(tokens, wte, wpe, "embedding_forward");
  KILN_CHECK(y.numel() == s.B * s.T * s.C && y.dtype() == wte.dtype() && wpe.dtype() == wte.dtype(),
             "embedding_forward: y {} {} and wpe {} must be ({}, {}, {}) and {} like wte",
             dtype_name(y.dtype()), y.shape().str(), dtype_name(wpe.dtype()), s.B, s.T, s.C,
             dtype_name(wte.dtype()));
  return s;
}

EmbeddingShape check_embedding_backward(const Tensor& tokens, const Tensor& dy, const Tensor& dwte,
                                        const Tensor& dwpe) {
  const EmbeddingShape s = embedding_geometry(tokens, dwte, dwpe, "embedding_backward");
  KILN_CHECK(dy.numel() == s.B * s.T * s.C && dwpe.dtype() == dwte.dtype(),
             "embedding_backward: dy {} does not match tokens {} and dwte {}, or dwpe is {} and "
             "dwte {}",
             dy.shape().str(), tokens.shape().str(), dwte.shape().str(), dtype_name(dwpe.dtype()),
             dtype_name(dwte.dtype()));
  check_accum_dtype(dwte, dy, "embedding_backward", "dwte");
  return s;
}

namespace {
RowsShape rows_geometry(const Tensor& x, const char* what) {
  KILN_CHECK(x.ndim() >= 1, "{}: x needs at least one dimension", what);
  const int64_t C = x.dim(-1);
  return RowsShape{C ? x.numel() / C : 0, C};
}
}  // namespace

RowsShape check_layernorm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                          const Tensor& mean, const Tensor& rstd) {
  const RowsShape s = rows_geometry(x, "layernorm_forward");
  KILN_CHECK(w.numel() == s.C && b.numel() == s.C && y.numel() == x.numel() &&
                 mean.numel() == s.N && rstd.numel() == s.N,
             "layernorm_forward: x {} needs w and b of {}, y of {} and mean/rstd of {} elements, "
             "got {} {} {} {} {}",
             x.shape().str(), s.C, x.numel(), s.N, w.shape().str(), b.shape().str(),
             y.shape().str(), mean.shape().str(), rstd.shape().str());
  KILN_CHECK(w.dtype() == x.dtype() && b.dtype() == x.dtype() && y.dtype() == x.dtype() &&
                 mean.dtype() == x.dtype() && rstd.dtype() == x.dtype(),
             "layernorm_forward: w, b, y, mean and rstd must be {} like x", dtype_name(x.dtype()));
  return s;
}

RowsShape check_layernorm_backward(const Tensor& x, const Tensor& w, const Tensor& mean,
                                   const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                                   const Tensor& dw, const Tensor& db) {
  const RowsShape s = rows_geometry(x, "layernorm_backward");
  KILN_CHECK(
      w.numel() == s.C && dw.numel() == s.C && db.numel() == s.C && dy.numel() == x.numel() &&
          dx.numel() == x.numel() && mean.numel() == s.N && rstd.numel() == s.N,
      "layernorm_backward: x {} needs w, dw and db of {}, dy and dx of {} and mean/rstd "
      "of {} elements, got {} {} {} {} {} {} {}",
      x.shape().str(), s.C, x.numel(), s.N, w.shape().str(), dw.shape().str(), db.shape().str(),
      dy.shape().str(), dx.shape().str(), mean.shape().str(), rstd.shape().str());
  KILN_CHECK(w.dtype() == x.dtype() && dy.dtype() == x.dtype() && dx.dtype() == x.dtype() &&
                 mean.dtype() == x.dtype() && rstd.dtype() == x.dtype(),
             "layernorm_backward: w, dy, dx, mean and rstd must be {} like x",
             dtype_name(x.dtype()));
  check_accum_dtype(dw, x, "layernorm_backward", "dw");
  KILN_CHECK(db.dtype() == dw.dtype(), "layernorm_backward: db is {} but dw is {}",
             dtype_name(db.dtype()), dtype_name(dw.dtype()));
  return s;
}

namespace {
AttentionShape attention_geometry(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                  int64_t n_head, const char* what) {
  KILN_CHECK(qkv.ndim() == 3 && qkv.dim(2) % 3 == 0, "{}: qkv must be (B, T, 3C), got {}", what,
             qkv.shape().str());
  const AttentionShape s{qkv.dim(0), qkv.dim(1), qkv.dim(2) / 3, n_head};
  KILN_CHECK(n_head >= 1 && s.C % n_head == 0, "{}: {} channels do not split into {} heads", what,
             s.C, n_head);
  KILN_CHECK(out.numel() == s.B * s.T * s.C && out.dtype() == qkv.dtype(),
             "{}: out {} {} must be ({}, {}, {}) {}", what, dtype_name(out.dtype()),
             out.shape().str(), s.B, s.T, s.C, dtype_name(qkv.dtype()));
  KILN_CHECK(lse.numel() == s.B * n_head * s.T && lse.dtype() == qkv.dtype(),
             "{}: lse {} {} must be ({}, {}, {}) {}", what, dtype_name(lse.dtype()),
             lse.shape().str(), s.B, n_head, s.T, dtype_name(qkv.dtype()));
  return s;
}
}  // namespace

AttentionShape check_attention(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                               int64_t n_head) {
  return attention_geometry(qkv, out, lse, n_head, "attention_forward");
}

AttentionShape check_attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                        const Tensor& dout, const Tensor& dqkv, int64_t n_head) {
  const AttentionShape s = attention_geometry(qkv, out, lse, n_head, "attention_backward");
  check_same(out, dout, "attention_backward");
  check_same(qkv, dqkv, "attention_backward");
  return s;
}

void check_add(const Tensor& a, const Tensor& b, const Tensor& y) {
  check_same(a, b, "add");
  check_same(a, y, "add");
}

void check_optimizer_f32(const Tensor& param, const Tensor& grad, const Tensor& s1,
                         const Tensor* s2, const char* what) {
  check_same(param, grad, what);
  check_same(param, s1, what);
  if (s2) check_same(param, *s2, what);
  KILN_CHECK(param.dtype() == DType::f32,
             "{} works on f32 master weights, gradients and state, "
             "got {}",
             what, dtype_name(param.dtype()));
}

void check_cast(const Tensor& src, const Tensor& dst) {
  KILN_CHECK(is_float(src.dtype()) && is_float(dst.dtype()) && src.numel() == dst.numel(),
             "cast: {} {} into {} {}", dtype_name(src.dtype()), src.shape().str(),
             dtype_name(dst.dtype()), dst.shape().str());
}

}  // namespace kiln
