// Shared argument checks of the Ops interface.
#include "core/ops_check.h"

namespace kiln {

void check_same(const Tensor& a, const Tensor& b, const char* what) {
  KILN_CHECK(a.dtype() == b.dtype() && a.numel() == b.numel(),
             "{}: tensors differ ({} {} vs {} {})", what, dtype_name(a.dtype()), a.shape().str(),
             dtype_name(b.dtype()), b.shape().str());
}

MatmulShape check_matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                         const Tensor& c) {
  KILN_CHECK(a.ndim() == 2 && b.ndim() == 2 && c.ndim() == 2,
             "matmul takes 2-D tensors, got {} {} {}", a.shape().str(), b.shape().str(),
             c.shape().str());
  KILN_CHECK(a.dtype() == b.dtype(), "matmul: a is {} but b is {}", dtype_name(a.dtype()),
             dtype_name(b.dtype()));
  MatmulShape s{trans_a ? a.dim(1) : a.dim(0), trans_b ? b.dim(0) : b.dim(1),
                trans_a ? a.dim(0) : a.dim(1)};
  const int64_t kb = trans_b ? b.dim(1) : b.dim(0);
  KILN_CHECK(s.k == kb && c.dim(0) == s.m && c.dim(1) == s.n,
             "matmul shapes: op(a) {}x{}, op(b) {}x{}, c {}", s.m, s.k, kb, s.n, c.shape().str());
  return s;
}

LinearShape check_linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  KILN_CHECK(w.ndim() == 2 && x.ndim() >= 1, "linear: w {} must be (out, in)", w.shape().str());
  LinearShape s{x.dim(0), w.dim(1), w.dim(0)};
  KILN_CHECK(x.numel() == s.n * s.in && b.numel() == s.out && y.numel() == s.n * s.out,
             "linear_forward shapes: x {}, w {}, b {}, y {}", x.shape().str(), w.shape().str(),
             b.shape().str(), y.shape().str());
  KILN_CHECK(x.dtype() == w.dtype() && y.dtype() == x.dtype() && b.dtype() == x.dtype(),
             "linear_forward: x, w, b and y must share a dtype");
  return s;
}

LinearShape check_linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy,
                                  const Tensor* dx, const Tensor& dw, const Tensor& db) {
  KILN_CHECK(w.ndim() == 2 && x.ndim() >= 1, "linear: w {} must be (out, in)", w.shape().str());
  LinearShape s{x.dim(0), w.dim(1), w.dim(0)};
  KILN_CHECK(x.numel() == s.n * s.in && dy.numel() == s.n * s.out && dw.numel() == w.numel() &&
                 db.numel() == s.out && (!dx || dx->numel() == x.numel()),
             "linear_backward shapes: x {}, w {}, dy {}", x.shape().str(), w.shape().str(),
             dy.shape().str());
  KILN_CHECK(x.dtype() == w.dtype() && dy.dtype() == x.dtype() && (!dx || dx->dtype() == x.dtype()),
             "linear_backward: x, w, dy and dx must share a dtype");
  KILN_CHECK(dw.dtype() == x.dtype() || dw.dtype() == DType::f32,
             "linear_backward: dw is {}, expected {} or f32", dtype_name(dw.dtype()),
             dtype_name(x.dtype()));
  return s;
}

namespace {
ConvShape conv_geometry(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  KILN_CHECK(x.ndim() == 4 && w.ndim() == 4 && w.dim(1) == x.dim(1),
             "conv2d: x {} and w {} must be (N, C, H, W) and (O, C, kh, kw)", x.shape().str(),
             w.shape().str());
  KILN_CHECK(p.stride >= 1 && p.pad >= 0, "conv2d: stride {} pad {}", p.stride, p.pad);
  ConvShape s{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), w.dim(3), 0, 0};
  s.ho = (s.h + 2 * p.pad - s.kh) / p.stride + 1;
  s.wo = (s.w + 2 * p.pad - s.kw) / p.stride + 1;
  KILN_CHECK(s.ho > 0 && s.wo > 0, "conv2d: kernel {}x{} larger than padded input {}x{}", s.kh,
             s.kw, s.h + 2 * p.pad, s.w + 2 * p.pad);
  return s;
}
}  // namespace

ConvShape check_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                       const Conv2dParams& p) {
  ConvShape s = conv_geometry(x, w, p);
  KILN_CHECK(b.numel() == s.o && y.numel() == s.n * s.o * s.ho * s.wo,
             "conv2d_forward: b {} or y {} do not match ({}, {}, {}, {})", b.shape().str(),
             y.shape().str(), s.n, s.o, s.ho, s.wo);
  KILN_CHECK(x.dtype() == w.dtype() && y.dtype() == x.dtype() && b.dtype() == x.dtype(),
             "conv2d_forward: x, w, b and y must share a dtype");
  return s;
}

ConvShape check_conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy,
                                const Tensor* dx, const Tensor& dw, const Tensor& db,
                                const Conv2dParams& p) {
  ConvShape s = conv_geometry(x, w, p);
  KILN_CHECK(dy.numel() == s.n * s.o * s.ho * s.wo && dw.numel() == w.numel() &&
                 db.numel() == s.o && (!dx || dx->numel() == x.numel()),
             "conv2d_backward: shapes of dy {}, dw {}, db {} do not match", dy.shape().str(),
             dw.shape().str(), db.shape().str());
  KILN_CHECK(x.dtype() == w.dtype() && dy.dtype() == x.dtype() && (!dx || dx->dtype() == x.dtype()),
             "conv2d_backward: x, w, dy and dx must share a dtype");
  KILN_CHECK(dw.dtype() == x.dtype() || dw.dtype() == DType::f32,
             "conv2d_backward: dw is {}, expected {} or f32", dtype_name(dw.dtype()),
             dtype_name(x.dtype()));
  return s;
}

void check_maxpool2d(const Tensor& x, const Tensor& y, const Tensor& argmax, int64_t kernel,
                     int64_t stride) {
  KILN_CHECK(x.ndim() == 4 && kernel >= 1 && stride >= 1 && x.dim(2) >= kernel &&
                 x.dim(3) >= kernel,
             "maxpool2d: x {} kernel {} stride {}", x.shape().str(), kernel, stride);
  const Shape expect{x.dim(0), x.dim(1), (x.dim(2) - kernel) / stride + 1,
                     (x.dim(3) - kernel) / stride + 1};
  KILN_CHECK(y.shape() == expect && argmax.shape() == expect && y.dtype() == x.dtype() &&
                 argmax.dtype() == DType::i32,
             "maxpool2d: y {} / argmax {} should be {}", y.shape().str(), argmax.shape().str(),
             expect.str());
}

void check_maxpool2d_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx) {
  KILN_CHECK(dx.ndim() == 4 && dy.ndim() == 4 && dy.shape() == argmax.shape() &&
                 dy.dim(0) == dx.dim(0) && dy.dim(1) == dx.dim(1) && dy.dtype() == dx.dtype() &&
                 argmax.dtype() == DType::i32,
             "maxpool2d_backward: dy {}, argmax {}, dx {}", dy.shape().str(),
             argmax.shape().str(), dx.shape().str());
}

int64_t check_dropout(const Tensor& x, const Tensor& y, const Tensor& mask, float p) {
  check_same(x, y, "dropout_forward");
  KILN_CHECK(mask.dtype() == DType::u8 && mask.numel() == x.numel(),
             "dropout_forward: mask must be u8 with x's {} elements", x.numel());
  KILN_CHECK(p >= 0.0f && p < 1.0f, "dropout probability {} is outside [0, 1)", p);
  KILN_CHECK(x.ndim() >= 1, "dropout_forward: x needs a batch dimension");
  return x.dim(0) ? x.numel() / x.dim(0) : 0;
}

void check_softmax_xent(const Tensor& logits, const Tensor& labels, const Tensor* dlogits,
                        const Tensor& stats) {
  KILN_CHECK(logits.ndim() == 2 && labels.dtype() == DType::i32 &&
                 labels.numel() == logits.dim(0),
             "softmax_xent: logits {} need (N, C) and labels (N) of i32, got labels {} {}",
             logits.shape().str(), dtype_name(labels.dtype()), labels.shape().str());
  KILN_CHECK(stats.dtype() == DType::f64 && stats.numel() == 2, "softmax_xent: stats is f64[2]");
  if (dlogits) check_same(logits, *dlogits, "softmax_xent");
}

void check_optimizer_f32(const Tensor& param, const Tensor& grad, const Tensor& s1,
                         const Tensor* s2, const char* what) {
  KILN_CHECK(param.dtype() == DType::f32 && grad.dtype() == DType::f32 &&
                 s1.dtype() == DType::f32 && (!s2 || s2->dtype() == DType::f32),
             "{} works on f32 master weights, gradients and state", what);
  check_same(param, grad, what);
  check_same(param, s1, what);
  if (s2) check_same(param, *s2, what);
}

}  // namespace kiln
