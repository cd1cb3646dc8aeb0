// A GPT decoder (the GPT-2 architecture) with explicit forward and backward over the transformer
// ops of core/ops.h: token + learned position embeddings, n_layer pre-LayerNorm blocks
// (x += proj(attn(ln_1(x))); x += proj(gelu(fc(ln_2(x))))), a final LayerNorm, and an LM head
// tied to the token embedding (logits = ln_f(x) wte^T). Loss: mean cross-entropy per token.
//
// Parameters, in forward order (names are stable: checkpoints and the PyTorch parity test use
// them; linear weights are (out, in) as torch.nn.Linear, i.e. transposed from GPT-2's Conv1D):
//   wte (V, C), wpe (seq_len, C),
//   h.{i}.ln_1.{weight,bias}, h.{i}.attn.c_attn.{weight (3C, C), bias}, h.{i}.attn.c_proj.*,
//   h.{i}.ln_2.*, h.{i}.mlp.c_fc.{weight (4C, C), bias}, h.{i}.mlp.c_proj.{weight (C, 4C), bias},
//   ln_f.{weight,bias}.
// Weight decay applies to wte, wpe and linear weights, not to biases or LayerNorm.
// Dropout (model.dropout), as GPT-2 places it: on the embeddings, and on each block's attention
// and MLP outputs before they join the residual stream; keyed by (seed, step, site, global
// sample index, element). Attention probabilities are not dropped: that would need the T x T
// mask kept or regenerated per head in backward, for a regulariser small models rarely need.
#pragma once

#include <vector>

#include "models/model.h"

namespace kiln {

struct GptShape {
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_embd = 128;
  int64_t seq_len = 128;
  int64_t vocab = 256;
  double dropout = 0.0;
};

class Gpt final : public Model {
 public:
  explicit Gpt(const GptShape& shape);
  std::string name() const override { return "gpt"; }
  void build(Device& device, DType dtype, uint64_t seed) override;
  // batch.x (B, T) i32 tokens with T <= seq_len, batch.y (B, T) i32 next tokens.
  LossSums forward_backward(const MicroBatch& batch, const ForwardContext& ctx,
                            float grad_scale) override;
  LossSums evaluate(const MicroBatch& batch) override;
  const Tensor& logits() const override { return logits_out_; }  // (B, T, V)
  const GptShape& shape() const { return shape_; }

 private:
  struct BlockParams {
    int ln1_w, ln1_b, attn_w, attn_b, proj_w, proj_b;
    int ln2_w, ln2_b, fc_w, fc_b, mlp_w, mlp_b;
  };
  // What backward needs from one block's forward; each tensor is a view into its own storage,
  // regrown only when a larger batch comes.
  struct BlockActs {
    Tensor ln1, ln1_mean, ln1_rstd, qkv, att, lse, attn_mask;
    Tensor mid, ln2, ln2_mean, ln2_rstd, fc, gelu, mlp_mask;
    Tensor out;  // the residual stream after the block
  };
  struct Stores {
    Tensor ln1, ln1_mean, ln1_rstd, qkv, att, lse, attn_mask;
    Tensor mid, ln2, ln2_mean, ln2_rstd, fc, gelu, mlp_mask, out;
  };

  // for_backward keeps every block's activations; without it the blocks share one set.
  void forward(const MicroBatch& batch, const ForwardContext& ctx, bool for_backward);
  void backward(const MicroBatch& batch);
  // y = x + dropout(branch) for one residual connection (branch is dropped in place); keeps
  // the mask when dropout is active.
  void residual_add(const Tensor& x, Tensor& branch, Tensor& y, Tensor& mask_store, Tensor& mask,
                    uint32_t site, const ForwardContext& ctx);
  // The gradient reaching a dropped-out branch: dres through the mask (or dres itself).
  const Tensor& through_dropout(const Tensor& dres, const Tensor& mask);
  LossSums loss(const MicroBatch& batch, float grad_scale, bool with_grad);
  Tensor buf(Tensor& store, const Shape& shape, DType dtype);

  GptShape shape_;
  DType dtype_ = DType::f32;
  int wte_ = -1, wpe_ = -1, lnf_w_ = -1, lnf_b_ = -1;
  std::vector<BlockParams> bp_;

  // Forward state.
  int64_t B_ = 0, T_ = 0;
  bool dropout_active_ = false;
  Tensor emb_store_, emb_, emb_mask_store_, emb_mask_, drop_store_, drop_;
  std::vector<Stores> stores_;
  std::vector<BlockActs> acts_;
  Tensor lnf_store_, lnf_, lnf_mean_store_, lnf_mean_, lnf_rstd_store_, lnf_rstd_;
  Tensor logits_store_, logits_, logits_out_, stats_;
  // Backward scratch, shared by all blocks.
  Tensor dlogits_store_, dlogits_, dres_store_, dres_, dtmp_store_, dtmp_, dnc_store_, dnc_;
  Tensor dwide_store_, dwide_, dqkv_store_, dqkv_;
};

}  // namespace kiln
