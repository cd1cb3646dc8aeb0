// GPT: parameter layout, GPT-2 initialisation, forward, loss and backward (see gpt.h).
#include "models/gpt.h"

#include <cmath>

#include "core/config.h"

namespace kiln {

namespace {

constexpr float kLayerNormEps = 1e-5f;  // torch.nn.LayerNorm's default, as GPT-2 uses

// Dropout sites: one stream of masks each.
uint32_t embedding_site() { return 0; }
uint32_t attention_site(int64_t layer) { return static_cast<uint32_t>(1 + 2 * layer); }
uint32_t mlp_site(int64_t layer) { return static_cast<uint32_t>(2 + 2 * layer); }

}  // namespace

Gpt::Gpt(const GptShape& shape) : shape_(shape) {
  KILN_CHECK(shape.n_head >= 1 && shape.n_embd % shape.n_head == 0,
             "gpt: model.n_embd = {} does not split into model.n_head = {} heads", shape.n_embd,
             shape.n_head);
  KILN_CHECK(shape.dropout >= 0 && shape.dropout < 1, "gpt: model.dropout = {} is outside [0, 1)",
             shape.dropout);
}

Tensor Gpt::buf(Tensor& store, const Shape& shape, DType dtype) {
  return reuse_buffer(store, shape, dtype, *device_);
}

void Gpt::build(Device& device, DType dtype, uint64_t seed) {
  device_ = &device;
  dtype_ = dtype;
  const int64_t C = shape_.n_embd, L = shape_.n_layer;
  ParamStore& s = params_;
  wte_ = s.declare("wte", Shape{shape_.vocab, C}, true);
  wpe_ = s.declare("wpe", Shape{shape_.seq_len, C}, true);
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = fmt::format("h.{}.", l);
    BlockParams b;
    b.ln1_w = s.declare(p + "ln_1.weight", Shape{C}, false);
    b.ln1_b = s.declare(p + "ln_1.bias", Shape{C}, false);
    b.attn_w = s.declare(p + "attn.c_attn.weight", Shape{3 * C, C}, true);
    b.attn_b = s.declare(p + "attn.c_attn.bias", Shape{3 * C}, false);
    b.proj_w = s.declare(p + "attn.c_proj.weight", Shape{C, C}, true);
    b.proj_b = s.declare(p + "attn.c_proj.bias", Shape{C}, false);
    b.ln2_w = s.declare(p + "ln_2.weight", Shape{C}, false);
    b.ln2_b = s.declare(p + "ln_2.bias", Shape{C}, false);
    b.fc_w = s.declare(p + "mlp.c_fc.weight", Shape{4 * C, C}, true);
    b.fc_b = s.declare(p + "mlp.c_fc.bias", Shape{4 * C}, false);
    b.mlp_w = s.declare(p + "mlp.c_proj.weight", Shape{C, 4 * C}, true);
    b.mlp_b = s.declare(p + "mlp.c_proj.bias", Shape{C}, false);
    bp_.push_back(b);
  }
  lnf_w_ = s.declare("ln_f.weight", Shape{C}, false);
  lnf_b_ = s.declare("ln_f.bias", Shape{C}, false);
  s.finalize(device, dtype);

  // GPT-2: N(0, 0.02) everywhere, the projections into the residual stream scaled down by
  // sqrt(2 n_layer) (two per block) so the stream's variance does not grow with depth.
  const double std = 0.02, proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(L));
  init_normal(s, wte_, std, seed);
  init_normal(s, wpe_, std, seed);
  for (const BlockParams& b : bp_) {
    for (int id : {b.ln1_w, b.ln2_w}) init_constant(s, id, 1.0);
    for (int id : {b.ln1_b, b.attn_b, b.proj_b, b.ln2_b, b.fc_b, b.mlp_b}) init_constant(s, id, 0);
    init_normal(s, b.attn_w, std, seed);
    init_normal(s, b.fc_w, std, seed);
    init_normal(s, b.proj_w, proj_std, seed);
    init_normal(s, b.mlp_w, proj_std, seed);
  }
  init_constant(s, lnf_w_, 1.0);
  init_constant(s, lnf_b_, 0.0);

  stores_.resize(static_cast<size_t>(L));
  acts_.resize(static_cast<size_t>(L));
  stats_ = Tensor::zeros(Shape{2}, DType::f64, device);
}

void Gpt::residual_add(const Tensor& x, Tensor& branch, Tensor& y, Tensor& mask_store, Tensor& mask,
                       uint32_t site, const ForwardContext& ctx) {
  Ops& ops = device_->ops();
  if (dropout_active_) {
    // Masks are drawn per sample: (B, T * C) keys element j of sample b.
    const Shape per_sample{B_, branch.numel() / B_};
    mask = buf(mask_store, per_sample, DType::u8);
    Tensor b2 = branch.reshape(per_sample);
    DropoutKey key{ctx.seed, static_cast<uint64_t>(ctx.step), site, ctx.first_sample};
    ops.dropout_forward(b2, b2, mask, static_cast<float>(shape_.dropout), key);
  }
  ops.add(x, branch, y);
}

const Tensor& Gpt::through_dropout(const Tensor& dres, const Tensor& mask) {
  if (!dropout_active_) return dres;
  dtmp_ = buf(dtmp_store_, dres.shape(), dres.dtype());
  Tensor m = mask.reshape(dres.shape());
  device_->ops().dropout_backward(dres, m, dtmp_, static_cast<float>(shape_.dropout));
  return dtmp_;
}

void Gpt::forward(const MicroBatch& batch, const ForwardContext& ctx, bool for_backward) {
  const Tensor& tok = batch.x;
  KILN_CHECK(tok.ndim() == 2 && tok.dtype() == DType::i32 && tok.dim(1) >= 1 &&
                 tok.dim(1) <= shape_.seq_len,
             "gpt: input must be (B, T) i32 tokens with 1 <= T <= model.seq_len = {}, got {} {}",
             shape_.seq_len, dtype_name(tok.dtype()), tok.shape().str());
  B_ = tok.dim(0);
  T_ = tok.dim(1);
  dtype_ = params_.compute_dtype();  // activations follow the compute copy (mixed precision)
  const int64_t N = B_ * T_, C = shape_.n_embd, V = shape_.vocab, H = shape_.n_head;
  dropout_active_ = ctx.training && shape_.dropout > 0;
  Ops& ops = device_->ops();
  auto P = [this](int id) { return params_.compute_param(id); };

  emb_ = buf(emb_store_, Shape{N, C}, dtype_);
  Tensor emb3 = emb_.reshape(Shape{B_, T_, C});
  ops.embedding_forward(tok, P(wte_), P(wpe_), emb3);
  if (dropout_active_) {
    const Shape per_sample{B_, T_ * C};
    emb_mask_ = buf(emb_mask_store_, per_sample, DType::u8);
    Tensor e2 = emb_.reshape(per_sample);
    DropoutKey key{ctx.seed, static_cast<uint64_t>(ctx.step), embedding_site(), ctx.first_sample};
    ops.dropout_forward(e2, e2, emb_mask_, static_cast<float>(shape_.dropout), key);
  }

  const Tensor* x = &emb_;  // the residual stream, (N, C)
  for (size_t l = 0; l < bp_.size(); ++l) {
    const BlockParams& p = bp_[l];
    BlockActs& a = acts_[l];
    // Without backward, every block reuses the first block's buffers: the one aliasing, a.out
    // with x, is safe because x is last read (into a.mid) before a.out is written.
    Stores& st = for_backward ? stores_[l] : stores_[0];
    // Attention branch.
    a.ln1 = buf(st.ln1, Shape{N, C}, dtype_);
    a.ln1_mean = buf(st.ln1_mean, Shape{N}, dtype_);
    a.ln1_rstd = buf(st.ln1_rstd, Shape{N}, dtype_);
    ops.layernorm_forward(*x, P(p.ln1_w), P(p.ln1_b), a.ln1, a.ln1_mean, a.ln1_rstd, kLayerNormEps);
    a.qkv = buf(st.qkv, Shape{N, 3 * C}, dtype_);
    ops.linear_forward(a.ln1, P(p.attn_w), P(p.attn_b), a.qkv);
    a.att = buf(st.att, Shape{N, C}, dtype_);
    a.lse = buf(st.lse, Shape{B_, H, T_}, dtype_);
    Tensor qkv3 = a.qkv.reshape(Shape{B_, T_, 3 * C}), att3 = a.att.reshape(Shape{B_, T_, C});
    ops.attention_forward(qkv3, att3, a.lse, H);
    drop_ = buf(drop_store_, Shape{N, C}, dtype_);  // the branch output: backward needs no copy
    ops.linear_forward(a.att, P(p.proj_w), P(p.proj_b), drop_);
    a.mid = buf(st.mid, Shape{N, C}, dtype_);
    residual_add(*x, drop_, a.mid, st.attn_mask, a.attn_mask, attention_site(l), ctx);
    // MLP branch.
    a.ln2 = buf(st.ln2, Shape{N, C}, dtype_);
    a.ln2_mean = buf(st.ln2_mean, Shape{N}, dtype_);
    a.ln2_rstd = buf(st.ln2_rstd, Shape{N}, dtype_);
    ops.layernorm_forward(a.mid, P(p.ln2_w), P(p.ln2_b), a.ln2, a.ln2_mean, a.ln2_rstd,
                          kLayerNormEps);
    a.fc = buf(st.fc, Shape{N, 4 * C}, dtype_);
    ops.linear_forward(a.ln2, P(p.fc_w), P(p.fc_b), a.fc);
    a.gelu = buf(st.gelu, Shape{N, 4 * C}, dtype_);
    ops.gelu_forward(a.fc, a.gelu);
    ops.linear_forward(a.gelu, P(p.mlp_w), P(p.mlp_b), drop_);
    a.out = buf(st.out, Shape{N, C}, dtype_);
    residual_add(a.mid, drop_, a.out, st.mlp_mask, a.mlp_mask, mlp_site(l), ctx);
    x = &a.out;
  }

  lnf_ = buf(lnf_store_, Shape{N, C}, dtype_);
  lnf_mean_ = buf(lnf_mean_store_, Shape{N}, dtype_);
  lnf_rstd_ = buf(lnf_rstd_store_, Shape{N}, dtype_);
  ops.layernorm_forward(*x, P(lnf_w_), P(lnf_b_), lnf_, lnf_mean_, lnf_rstd_, kLayerNormEps);
  // Tied head: logits (N, V) = lnf (N, C) wte (V, C)^T.
  logits_ = buf(logits_store_, Shape{N, V}, dtype_);
  ops.matmul(lnf_, false, P(wte_), true, logits_);
  logits_out_ = logits_.reshape(Shape{B_, T_, V});
}

LossSums Gpt::loss(const MicroBatch& batch, float grad_scale, bool with_grad) {
  const int64_t N = B_ * T_;
  KILN_CHECK(batch.y.dtype() == DType::i32 && batch.y.numel() == N,
             "gpt: labels must be (B, T) = ({}, {}) i32, got {} {}", B_, T_,
             dtype_name(batch.y.dtype()), batch.y.shape().str());
  if (with_grad) dlogits_ = buf(dlogits_store_, logits_.shape(), dtype_);
  // The mean over the batch's tokens: the trainer's scale covers samples, each has T tokens.
  device_->ops().softmax_xent(logits_, batch.y.reshape(Shape{N}), with_grad ? &dlogits_ : nullptr,
                              grad_scale / static_cast<float>(T_), stats_);
  std::vector<double> s = stats_.to_vector<double>();
  return LossSums{s[0], s[1], N};
}

void Gpt::backward(const MicroBatch& batch) {
  const int64_t N = B_ * T_, C = shape_.n_embd, H = shape_.n_head;
  Ops& ops = device_->ops();
  ParamStore& s = params_;
  auto P = [&s](int id) { return s.compute_param(id); };
  auto mark = [&s](int b, int w) {
    s.mark_grad_ready(b);
    s.mark_grad_ready(w);
  };
  s.begin_backward();

  // Head: dlnf = dlogits wte; dwte += dlogits^T lnf (wte stays open: the embedding adds more).
  dnc_ = buf(dnc_store_, Shape{N, C}, dtype_);
  ops.matmul(dlogits_, false, P(wte_), false, dnc_);
  Tensor dwte = s.grad(wte_);
  ops.matmul(dlogits_, true, lnf_, false, dwte, 1.0f, 1.0f);
  dres_ = buf(dres_store_, Shape{N, C}, dtype_);
  const Tensor& x_last = bp_.empty() ? emb_ : acts_.back().out;
  Tensor dlnf_w = s.grad(lnf_w_), dlnf_b = s.grad(lnf_b_);
  ops.layernorm_backward(x_last, P(lnf_w_), lnf_mean_, lnf_rstd_, dnc_, dres_, dlnf_w, dlnf_b,
                         false);
  mark(lnf_b_, lnf_w_);

  // dres_ is the residual stream's gradient; each branch adds its input gradient into it.
  dwide_ = buf(dwide_store_, Shape{N, 4 * C}, dtype_);
  dqkv_ = buf(dqkv_store_, Shape{N, 3 * C}, dtype_);
  for (size_t l = bp_.size(); l-- > 0;) {
    const BlockParams& p = bp_[l];
    BlockActs& a = acts_[l];
    const Tensor& x_in = l == 0 ? emb_ : acts_[l - 1].out;
    Tensor gw, gb, gw2, gb2;

    const Tensor& dmlp = through_dropout(dres_, a.mlp_mask);
    gw = s.grad(p.mlp_w), gb = s.grad(p.mlp_b);
    ops.linear_backward(a.gelu, P(p.mlp_w), dmlp, &dwide_, gw, gb);
    mark(p.mlp_b, p.mlp_w);
    ops.gelu_backward(a.fc, dwide_, dwide_);
    gw = s.grad(p.fc_w), gb = s.grad(p.fc_b);
    ops.linear_backward(a.ln2, P(p.fc_w), dwide_, &dnc_, gw, gb);
    mark(p.fc_b, p.fc_w);
    gw2 = s.grad(p.ln2_w), gb2 = s.grad(p.ln2_b);
    ops.layernorm_backward(a.mid, P(p.ln2_w), a.ln2_mean, a.ln2_rstd, dnc_, dres_, gw2, gb2, true);
    mark(p.ln2_b, p.ln2_w);

    const Tensor& dproj = through_dropout(dres_, a.attn_mask);
    gw = s.grad(p.proj_w), gb = s.grad(p.proj_b);
    ops.linear_backward(a.att, P(p.proj_w), dproj, &dnc_, gw, gb);
    mark(p.proj_b, p.proj_w);
    Tensor qkv3 = a.qkv.reshape(Shape{B_, T_, 3 * C}), att3 = a.att.reshape(Shape{B_, T_, C});
    Tensor datt3 = dnc_.reshape(Shape{B_, T_, C}), dqkv3 = dqkv_.reshape(Shape{B_, T_, 3 * C});
    ops.attention_backward(qkv3, att3, a.lse, datt3, dqkv3, H);
    gw = s.grad(p.attn_w), gb = s.grad(p.attn_b);
    ops.linear_backward(a.ln1, P(p.attn_w), dqkv_, &dnc_, gw, gb);
    mark(p.attn_b, p.attn_w);
    gw2 = s.grad(p.ln1_w), gb2 = s.grad(p.ln1_b);
    ops.layernorm_backward(x_in, P(p.ln1_w), a.ln1_mean, a.ln1_rstd, dnc_, dres_, gw2, gb2, true);
    mark(p.ln1_b, p.ln1_w);
  }

  const Tensor& demb = through_dropout(dres_, emb_mask_);
  Tensor dwpe = s.grad(wpe_);
  ops.embedding_backward(batch.x, demb.reshape(Shape{B_, T_, C}), dwte, dwpe);
  s.mark_grad_ready(wpe_);
  s.mark_grad_ready(wte_);  // last: the tied head and the embedding have both added theirs
}

LossSums Gpt::forward_backward(const MicroBatch& batch, const ForwardContext& ctx,
                               float grad_scale) {
  forward(batch, ctx, true);
  LossSums sums = loss(batch, grad_scale, true);
  backward(batch);
  return sums;
}

LossSums Gpt::evaluate(const MicroBatch& batch) {
  ForwardContext ctx;
  ctx.training = false;
  forward(batch, ctx, false);
  return loss(batch, 1.0f, false);
}

std::unique_ptr<Model> make_gpt(const Config& cfg, const ModelSpec& spec) {
  const ModelConfig& m = cfg.model;
  KILN_CHECK(spec.num_classes == m.vocab, "{} = {} but the dataset's vocabulary has {} tokens",
             cfg.where("model.vocab"), m.vocab, spec.num_classes);
  KILN_CHECK(spec.sample_shape.ndim() == 1 && spec.sample_shape[0] <= m.seq_len,
             "model gpt needs token windows of at most {} = {}, the dataset gives {}",
             cfg.where("model.seq_len"), m.seq_len, spec.sample_shape.str());
  GptShape s;
  s.n_layer = m.n_layer;
  s.n_head = m.n_head;
  s.n_embd = m.n_embd;
  s.seq_len = m.seq_len;
  s.vocab = m.vocab;
  s.dropout = m.dropout;
  return std::make_unique<Gpt>(s);
}

}  // namespace kiln
