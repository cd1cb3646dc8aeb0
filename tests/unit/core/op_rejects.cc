// The bad-call table of op_rejects.h: at least one wrong shape or dtype per Ops method.
#include "op_rejects.h"

namespace kiln::test {

namespace {

Tensor z(Device& d, const Shape& s, DType t = DType::f32) { return Tensor::zeros(s, t, d); }

std::vector<BadCall> make_bad_calls() {
  using S = Shape;
  const DType f64 = DType::f64, i32 = DType::i32, u8 = DType::u8;
  std::vector<BadCall> c;
  c.push_back(
      {"matmul_inner", "matmul shapes: op(a) 2x3, op(b) 4x5, c (2, 5)", [](Ops& o, Device& d) {
         Tensor y = z(d, S{2, 5});
         o.matmul(z(d, S{2, 3}), false, z(d, S{4, 5}), false, y, 1.0f, 0.0f);
       }});
  c.push_back({"matmul_c_dtype", "matmul: c is f64 but the operands are f32; it must be f32",
               [=](Ops& o, Device& d) {
                 Tensor y = z(d, S{2, 5}, f64);
                 o.matmul(z(d, S{2, 3}), false, z(d, S{3, 5}), false, y, 1.0f, 0.0f);
               }});
  c.push_back({"linear_forward_in", "linear_forward shapes: x (4, 3), w (5, 2), b (5), y (4, 5)",
               [](Ops& o, Device& d) {
                 Tensor y = z(d, S{4, 5});
                 o.linear_forward(z(d, S{4, 3}), z(d, S{5, 2}), z(d, S{5}), y);
               }});
  c.push_back({"linear_backward_db_dtype",
               "linear_backward: db is f64 but the operands are f32; it must be f32",
               [=](Ops& o, Device& d) {
                 Tensor dx = z(d, S{4, 3}), dw = z(d, S{5, 3}), db = z(d, S{5}, f64);
                 o.linear_backward(z(d, S{4, 3}), z(d, S{5, 3}), z(d, S{4, 5}), &dx, dw, db);
               }});
  c.push_back({"conv2d_forward_kernel", "conv2d: kernel 5x5 larger than padded input 4x4",
               [](Ops& o, Device& d) {
                 Tensor y = z(d, S{1, 1, 1, 1});
                 o.conv2d_forward(z(d, S{1, 1, 2, 2}), z(d, S{1, 1, 5, 5}), z(d, S{1}), y,
                                  Conv2dParams{1, 1});
               }});
  c.push_back({"conv2d_backward_channels",
               "conv2d: x (1, 2, 4, 4) and w (1, 3, 3, 3) must be (N, C, H, W) and (O, C, kh, kw)",
               [](Ops& o, Device& d) {
                 Tensor dw = z(d, S{1, 3, 3, 3}), db = z(d, S{1});
                 o.conv2d_backward(z(d, S{1, 2, 4, 4}), z(d, S{1, 3, 3, 3}), z(d, S{1, 1, 2, 2}),
                                   nullptr, dw, db, Conv2dParams{});
               }});
  c.push_back({"maxpool2d_forward_kernel", "maxpool2d: x (1, 1, 2, 2) kernel 3 stride 1",
               [=](Ops& o, Device& d) {
                 Tensor y = z(d, S{1, 1, 1, 1}), arg = z(d, S{1, 1, 1, 1}, i32);
                 o.maxpool2d_forward(z(d, S{1, 1, 2, 2}), y, arg, 3, 1);
               }});
  c.push_back({"maxpool2d_backward_argmax", "maxpool2d_backward: dy f32 (1, 1, 2, 2), argmax f32",
               [](Ops& o, Device& d) {
                 Tensor dx = z(d, S{1, 1, 4, 4});
                 o.maxpool2d_backward(z(d, S{1, 1, 2, 2}), z(d, S{1, 1, 2, 2}), dx);
               }});
  c.push_back(
      {"relu_forward", "relu_forward: tensors differ (f32 (5) vs f32 (6))", [](Ops& o, Device& d) {
         Tensor y = z(d, S{6});
         o.relu_forward(z(d, S{5}), y);
       }});
  c.push_back({"relu_backward", "relu_backward: tensors differ (f32 (5) vs f64 (5))",
               [=](Ops& o, Device& d) {
                 Tensor dx = z(d, S{5});
                 o.relu_backward(z(d, S{5}), z(d, S{5}, f64), dx);
               }});
  c.push_back({"gelu_forward", "gelu_forward: tensors differ (f32 (2, 3) vs f32 (3, 3))",
               [](Ops& o, Device& d) {
                 Tensor y = z(d, S{3, 3});
                 o.gelu_forward(z(d, S{2, 3}), y);
               }});
  c.push_back({"gelu_backward", "gelu_backward: tensors differ (f32 (4) vs f32 (3))",
               [](Ops& o, Device& d) {
                 Tensor dx = z(d, S{3});
                 o.gelu_backward(z(d, S{4}), z(d, S{4}), dx);
               }});
  c.push_back(
      {"dropout_forward_p", "dropout probability 1 is outside [0, 1)", [=](Ops& o, Device& d) {
         Tensor y = z(d, S{2, 3}), mask = z(d, S{2, 3}, u8);
         o.dropout_forward(z(d, S{2, 3}), y, mask, 1.0f, DropoutKey{});
       }});
  c.push_back({"dropout_backward_mask", "dropout_backward: mask must be u8 with dy's 6 elements",
               [](Ops& o, Device& d) {
                 Tensor dx = z(d, S{2, 3});
                 o.dropout_backward(z(d, S{2, 3}), z(d, S{2, 3}), dx, 0.5f);
               }});
  c.push_back({"softmax_xent_labels",
               "softmax_xent: logits (4, 3) need (N, C) and labels (N) of i32, got labels f32 (4)",
               [=](Ops& o, Device& d) {
                 Tensor stats = z(d, S{2}, f64);
                 o.softmax_xent(z(d, S{4, 3}), z(d, S{4}), nullptr, 1.0f, stats);
               }});
  c.push_back({"embedding_forward_positions",
               "embedding_forward: 5 positions but the position table has 4",
               [=](Ops& o, Device& d) {
                 Tensor y = z(d, S{2, 5, 3});
                 o.embedding_forward(z(d, S{2, 5}, i32), z(d, S{7, 3}), z(d, S{4, 3}), y);
               }});
  c.push_back({"embedding_backward_dwte_dtype",
               "embedding_backward: dwte is f64 but the operands are f32; it must be f32",
               [=](Ops& o, Device& d) {
                 Tensor dwte = z(d, S{7, 3}, f64), dwpe = z(d, S{5, 3}, f64);
                 o.embedding_backward(z(d, S{2, 5}, i32), z(d, S{2, 5, 3}), dwte, dwpe);
               }});
  c.push_back({"layernorm_forward_w", "layernorm_forward: x (3, 4) needs w and b of 4",
               [](Ops& o, Device& d) {
                 Tensor y = z(d, S{3, 4}), mean = z(d, S{3}), rstd = z(d, S{3});
                 o.layernorm_forward(z(d, S{3, 4}), z(d, S{5}), z(d, S{4}), y, mean, rstd, 1e-5f);
               }});
  c.push_back({"layernorm_backward_mean_dtype",
               "layernorm_backward: w, dy, dx, mean and rstd must be f32 like x",
               [=](Ops& o, Device& d) {
                 Tensor dx = z(d, S{3, 4}), dw = z(d, S{4}), db = z(d, S{4});
                 o.layernorm_backward(z(d, S{3, 4}), z(d, S{4}), z(d, S{3}, f64), z(d, S{3}),
                                      z(d, S{3, 4}), dx, dw, db, false);
               }});
  c.push_back({"attention_forward_heads", "attention_forward: 6 channels do not split into 4 heads",
               [](Ops& o, Device& d) {
                 Tensor out = z(d, S{1, 2, 6}), lse = z(d, S{1, 4, 2});
                 o.attention_forward(z(d, S{1, 2, 18}), out, lse, 4);
               }});
  c.push_back({"attention_backward_dqkv",
               "attention_backward: tensors differ (f32 (1, 2, 18) vs f32 (1, 2, 12))",
               [](Ops& o, Device& d) {
                 Tensor dqkv = z(d, S{1, 2, 12});
                 o.attention_backward(z(d, S{1, 2, 18}), z(d, S{1, 2, 6}), z(d, S{1, 2, 2}),
                                      z(d, S{1, 2, 6}), dqkv, 2);
               }});
  c.push_back({"add", "add: tensors differ (f32 (3) vs f32 (4))", [](Ops& o, Device& d) {
                 Tensor y = z(d, S{3});
                 o.add(z(d, S{3}), z(d, S{4}), y);
               }});
  c.push_back({"adamw_step_dtype",
               "adamw_step works on f32 master weights, gradients and state, "
               "got f64",
               [=](Ops& o, Device& d) {
                 Tensor p = z(d, S{4}, f64), m = z(d, S{4}, f64), v = z(d, S{4}, f64);
                 o.adamw_step(p, z(d, S{4}, f64), m, v, AdamWArgs{});
               }});
  c.push_back(
      {"sgd_step_sizes", "sgd_step: tensors differ (f32 (4) vs f32 (5))", [](Ops& o, Device& d) {
         Tensor p = z(d, S{4}), buf = z(d, S{5});
         o.sgd_step(p, z(d, S{4}), buf, SgdArgs{});
       }});
  c.push_back({"cast_sizes", "cast: f32 (3) into bf16 (4)", [](Ops& o, Device& d) {
                 Tensor dst = z(d, S{4}, DType::bf16);
                 o.cast(z(d, S{3}), dst, false);
               }});
  return c;
}

}  // namespace

const std::vector<BadCall>& bad_calls() {
  static const std::vector<BadCall> calls = make_bad_calls();
  return calls;
}

}  // namespace kiln::test
