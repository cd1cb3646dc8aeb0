// Argument checks shared by every Ops backend, so each op rejects the same bad shapes with the
// same message whatever device runs it. Each returns the geometry it validated.
#pragma once

#include <cstdint>

#include "core/ops.h"

namespace kiln {

struct MatmulShape {
  int64_t m, n, k;
};
struct LinearShape {
  int64_t n, in, out;
};
struct ConvShape {
  int64_t n, c, h, w, o, kh, kw, ho, wo;
};

void check_same(const Tensor& a, const Tensor& b, const char* what);
MatmulShape check_matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b,
                         const Tensor& c);
LinearShape check_linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y);
// dw and db may be f32 while the operands are 16-bit (mixed precision).
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
// Returns the elements per sample.
int64_t check_dropout(const Tensor& x, const Tensor& y, const Tensor& mask, float p);
void check_softmax_xent(const Tensor& logits, const Tensor& labels, const Tensor* dlogits,
                        const Tensor& stats);
void check_optimizer_f32(const Tensor& param, const Tensor& grad, const Tensor& s1,
                         const Tensor* s2, const char* what);

}  // namespace kiln
