// The kernels every device implements. Layers call these through Device::ops(); the CPU
// implementation (core/kernels/cpu) is the reference that every other backend is tested against
// (tests/unit/core/ops_test.cc). All tensors are contiguous and row-major; shapes are checked.
// Work is queued on the device's compute stream (on the CPU it is done when the call returns).
// Gradient outputs of parameters (dw, db) accumulate (+=), so micro-batches add up in place;
// gradient outputs of activations (dx) are overwritten.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace kiln {

struct Conv2dParams {
  int64_t stride = 1;
  int64_t pad = 0;
};

// Dropout masks come from a counter-based generator keyed by (seed, step, layer, global sample
// index, element), so they do not depend on how samples are split across ranks.
struct DropoutKey {
  uint64_t seed = 0;
  uint64_t step = 0;
  uint32_t layer = 0;
  int64_t first_sample = 0;  // global index of the batch's first sample
};

// One AdamW update (decoupled weight decay, PyTorch's formulation) of a range of parameters.
// The scalars are doubles, as in Python: kernels derive 1 - beta and the step size from them in
// double and round once (1 - float(0.999) is 1.3e-5 away from float(1 - 0.999)).
struct AdamWArgs {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int64_t step = 1;          // 1-based, for bias correction
  float grad_scale = 1.0f;   // gradients are multiplied by this first (clipping, unscaling)
};

// SGD with momentum (PyTorch's formulation: weight decay added to the gradient).
struct SgdArgs {
  float lr = 1e-2f;
  float momentum = 0.0f;
  float dampening = 0.0f;
  float weight_decay = 0.0f;
  bool nesterov = false;
  bool first_step = false;  // the momentum buffer starts as the gradient
  float grad_scale = 1.0f;
};

class Ops {
 public:
  virtual ~Ops() = default;

  // c (M, N) = alpha * op(a) @ op(b) + beta * c, where op(a) is (M, K) and op(b) is (K, N).
  virtual void matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c,
                      float alpha = 1.0f, float beta = 0.0f) = 0;

  // y (N, out) = x (N, in) @ w (out, in)^T + b (out)
  virtual void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) = 0;
  // dw += dy^T @ x, db += sum over rows of dy, dx = dy @ w (skipped when dx is null).
  virtual void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                               Tensor& dw, Tensor& db) = 0;

  // y (N, O, Ho, Wo) = conv(x (N, C, H, W), w (O, C, kh, kw)) + b (O)
  virtual void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y,
                              const Conv2dParams& p) = 0;
  // dw += dL/dw, db += dL/db, dx = dL/dx (skipped when dx is null).
  virtual void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                               Tensor& dw, Tensor& db, const Conv2dParams& p) = 0;

  // y (N, C, Ho, Wo) = max over k x k windows of x (N, C, H, W); argmax (i32, y's shape) holds
  // the index of the chosen element within its (H, W) plane.
  virtual void maxpool2d_forward(const Tensor& x, Tensor& y, Tensor& argmax, int64_t kernel,
                                 int64_t stride) = 0;
  virtual void maxpool2d_backward(const Tensor& dy, const Tensor& argmax, Tensor& dx) = 0;

  virtual void relu_forward(const Tensor& x, Tensor& y) = 0;
  // dx = dy where y > 0, else 0 (y is the forward output).
  virtual void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) = 0;
  // GELU, tanh approximation (as GPT-2 and torch.nn.GELU(approximate='tanh')).
  virtual void gelu_forward(const Tensor& x, Tensor& y) = 0;
  virtual void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) = 0;

  // Inverted dropout: keeps an element with probability 1 - p and scales it by 1 / (1 - p).
  // x is (N, ...): the mask element of sample n, element j is drawn from (key, first_sample + n,
  // j). mask (u8, x's shape) records what was kept.
  virtual void dropout_forward(const Tensor& x, Tensor& y, Tensor& mask, float p,
                               const DropoutKey& key) = 0;
  virtual void dropout_backward(const Tensor& dy, const Tensor& mask, Tensor& dx, float p) = 0;

  // Softmax cross-entropy over logits (N, C) with labels (N, i32), fused with its gradient:
  // dlogits = (softmax - onehot) * grad_scale (skipped when dlogits is null). stats (f64, 2)
  // receives {sum of per-row losses, number of rows whose argmax is the label}.
  virtual void softmax_xent(const Tensor& logits, const Tensor& labels, Tensor* dlogits,
                            float grad_scale, Tensor& stats) = 0;

  // ---- transformer ops (GPT) ----
  // y (B, T, C) = wte[tokens[b, t]] + wpe[t]; tokens (B, T) i32 in [0, V), wte (V, C),
  // wpe (P, C) with P >= T.
  virtual void embedding_forward(const Tensor& tokens, const Tensor& wte, const Tensor& wpe,
                                 Tensor& y) = 0;
  // dwte[tokens[b, t]] += dy[b, t] and dwpe[t] += sum over b of dy[b, t]. Repeated tokens add
  // up; a backend must not race on them.
  virtual void embedding_backward(const Tensor& tokens, const Tensor& dy, Tensor& dwte,
                                  Tensor& dwpe) = 0;

  // Over the last dimension of x (N, C): y = (x - mean) * rstd * w + b with
  // rstd = 1 / sqrt(var + eps) (biased variance, as torch.nn.LayerNorm). mean and rstd (N, x's
  // dtype) are saved for backward.
  virtual void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y,
                                 Tensor& mean, Tensor& rstd, float eps) = 0;
  // dw += sum over rows of dy * xhat, db += sum over rows of dy; dx = dL/dx, or dx += dL/dx when
  // accumulate_dx (the residual stream's gradient adds up in place).
  virtual void layernorm_backward(const Tensor& x, const Tensor& w, const Tensor& mean,
                                  const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dw,
                                  Tensor& db, bool accumulate_dx) = 0;

  // Causal multi-head self-attention. qkv (B, T, 3C) holds q, k and v side by side, each split
  // into n_head heads of C / n_head; out (B, T, C) = softmax(q k^T / sqrt(C / n_head), causal)
  // v per head, heads side by side. lse (B, n_head, T, x's dtype) receives the log-sum-exp of
  // each row of scaled scores, from which backward recomputes the probabilities (no T x T
  // tensor is kept between forward and backward).
  virtual void attention_forward(const Tensor& qkv, Tensor& out, Tensor& lse, int64_t n_head) = 0;
  // dqkv (B, T, 3C) = dL/dqkv (overwritten), given the forward's qkv, out and lse.
  virtual void attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                  const Tensor& dout, Tensor& dqkv, int64_t n_head) = 0;

  // y = a + b element-wise (residual connections); y may be a or b.
  virtual void add(const Tensor& a, const Tensor& b, Tensor& y) = 0;

  // Optimizer updates over ranges of the flat buffers; m, v, buf are the optimizer state (f32).
  virtual void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                          const AdamWArgs& args) = 0;
  virtual void sgd_step(Tensor& param, const Tensor& grad, Tensor& buf, const SgdArgs& args) = 0;

  // Flat-buffer helpers.
  virtual double sum_squares(const Tensor& x) = 0;  // blocks until the result is known
  virtual void scale(Tensor& x, double alpha) = 0;
  // True when every element is finite; blocks until the result is known.
  virtual bool all_finite(const Tensor& x) = 0;
  // dst = src converted between float dtypes (f32, f64, bf16, f16; round to nearest even), or
  // dst += src when accumulate. Same element count. Mixed precision keeps 16-bit compute copies
  // of the f32 master weights with it.
  virtual void cast(const Tensor& src, Tensor& dst, bool accumulate = false) = 0;
};

}  // namespace kiln
