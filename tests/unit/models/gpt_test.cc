// The GPT model: parameter names and decay flags, GPT-2 initialisation, the grad-ready order
// (tied wte last), the loss at initialisation, and the whole model's backward (with dropout on)
// against central finite differences in f64; and the shipped configs/gpt_kjv.yaml.
#include "models/gpt.h"

#include <cmath>

#include "core/rng.h"
#include "models/registry.h"
#include "unit/test_util.h"

namespace kiln {
namespace {

GptShape tiny(double dropout = 0.0) {
  GptShape s;
  s.n_layer = 2;
  s.n_head = 2;
  s.n_embd = 8;
  s.seq_len = 6;
  s.vocab = 11;
  s.dropout = dropout;
  return s;
}

MicroBatch batch_of(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  Rng rng(seed, 3);
  std::vector<int32_t> x(static_cast<size_t>(B * T)), y(x.size());
  for (int32_t& v : x) v = static_cast<int32_t>(rng.below(static_cast<uint64_t>(V)));
  for (int32_t& v : y) v = static_cast<int32_t>(rng.below(static_cast<uint64_t>(V)));
  MicroBatch b;
  b.x = Tensor::from_vector(x, Shape{B, T});
  b.y = Tensor::from_vector(y, Shape{B, T});
  b.first_sample = 40;
  return b;
}

TEST(Gpt, ParametersHaveStableNamesOrderAndDecayFlags) {
  Gpt m(tiny());
  m.build(cpu_device(), DType::f32, 1);
  const auto& p = m.params().infos();
  ASSERT_EQ(p.size(), 2u + 2 * 12 + 2);
  EXPECT_EQ(p[0].name, "wte");
  EXPECT_EQ(p[0].shape, (Shape{11, 8}));
  EXPECT_EQ(p[1].name, "wpe");
  EXPECT_EQ(p[1].shape, (Shape{6, 8}));
  const std::vector<std::string> block = {
      "ln_1.weight",        "ln_1.bias",        "attn.c_attn.weight", "attn.c_attn.bias",
      "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",        "ln_2.bias",
      "mlp.c_fc.weight",    "mlp.c_fc.bias",    "mlp.c_proj.weight",  "mlp.c_proj.bias"};
  for (int l = 0; l < 2; ++l) {
    for (size_t i = 0; i < block.size(); ++i) {
      const ParamInfo& info = p[2 + l * 12 + i];
      EXPECT_EQ(info.name, fmt::format("h.{}.{}", l, block[i]));
      const bool linear_weight =
          block[i].find("c_") != std::string::npos && block[i].find("weight") != std::string::npos;
      EXPECT_EQ(info.decay, linear_weight) << info.name;
    }
  }
  EXPECT_EQ(p[2 + 2].shape, (Shape{24, 8}));   // c_attn (3C, C)
  EXPECT_EQ(p[2 + 10].shape, (Shape{8, 32}));  // mlp.c_proj (C, 4C)
  EXPECT_EQ(p[26].name, "ln_f.weight");
  EXPECT_TRUE(p[0].decay && p[1].decay);
  EXPECT_FALSE(p[26].decay || p[27].decay);
}

TEST(Gpt, Gpt2Initialisation) {
  GptShape s = tiny();
  s.n_embd = 64;
  s.n_layer = 8;
  Gpt m(s);
  m.build(cpu_device(), DType::f32, 3);
  auto stats = [&](const std::string& name) {
    std::vector<double> v = test::as_doubles(m.params().param(m.params().find(name)));
    double mean = 0, sq = 0;
    for (double x : v) mean += x / v.size();
    for (double x : v) sq += (x - mean) * (x - mean) / v.size();
    return std::pair<double, double>{mean, std::sqrt(sq)};
  };
  EXPECT_NEAR(stats("h.0.mlp.c_fc.weight").second, 0.02, 0.001);            // 16384 draws
  EXPECT_NEAR(stats("h.3.attn.c_proj.weight").second, 0.02 / 4.0, 0.0003);  // / sqrt(2 * 8)
  EXPECT_NEAR(stats("h.3.mlp.c_proj.weight").second, 0.02 / 4.0, 0.0003);
  EXPECT_EQ(stats("h.1.ln_2.weight"), (std::pair<double, double>{1.0, 0.0}));
  EXPECT_EQ(stats("h.1.attn.c_attn.bias"), (std::pair<double, double>{0.0, 0.0}));
  // Keyed by name: another layer's same-shaped weight differs.
  EXPECT_NE(test::as_doubles(m.params().param(m.params().find("h.0.mlp.c_fc.weight"))),
            test::as_doubles(m.params().param(m.params().find("h.1.mlp.c_fc.weight"))));
}

TEST(Gpt, LossAtInitialisationIsNearLogVocab) {
  GptShape s = tiny();
  s.vocab = 256;
  Gpt m(s);
  m.build(cpu_device(), DType::f32, 1);
  LossSums l = m.evaluate(batch_of(4, 6, 256, 2));
  EXPECT_EQ(l.count, 24);
  EXPECT_NEAR(l.loss / l.count, std::log(256.0), 0.02);  // logits ~ 0.02^2 * C: near uniform
  EXPECT_EQ(m.logits().shape(), (Shape{4, 6, 256}));
}

TEST(Gpt, GradientsBecomeReadyBackToFrontWithTiedEmbeddingLast) {
  Gpt m(tiny());
  m.build(cpu_device(), DType::f32, 1);
  std::vector<std::pair<int64_t, int64_t>> ranges;
  m.params().set_grad_ready_hook([&](int64_t b, int64_t e) { ranges.push_back({b, e}); });
  ForwardContext ctx;
  m.forward_backward(batch_of(2, 5, 11, 4), ctx, 0.5f);
  ASSERT_GE(ranges.size(), 2u);
  EXPECT_EQ(ranges.front().second, m.params().total());
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_EQ(ranges[i].second, ranges[i - 1].first);
  EXPECT_EQ(ranges.back().first, 0);
  // wte's range arrives last and alone: wpe (declared after it) was final before it.
  EXPECT_EQ(ranges.back().second, m.params().infos()[1].offset);
}

// Whole-model gradient check: a few elements of every parameter, dropout on (its masks are a
// function of the key, so every evaluation drops the same elements).
TEST(Gpt, BackwardMatchesFiniteDifferences) {
  Gpt m(tiny(0.2));
  m.build(cpu_device(), DType::f64, 5);
  MicroBatch b = batch_of(3, 6, 11, 6);
  ForwardContext ctx{true, 9, 4, b.first_sample};
  const float scale = 1.0f / 3;  // the batch mean
  ParamStore& ps = m.params();
  ps.grads().zero();
  const LossSums at = m.forward_backward(b, ctx, scale);
  std::vector<double> analytic = test::as_doubles(ps.grads());
  auto loss = [&] { return m.forward_backward(b, ctx, scale).loss / at.count; };

  Rng rng(7, 7);
  std::vector<double> got, want;
  double* p = ps.params().data<double>();
  for (const ParamInfo& info : ps.infos()) {
    for (int k = 0; k < 3; ++k) {
      const int64_t i = info.offset + static_cast<int64_t>(rng.below(info.numel));
      const double keep = p[i], h = 1e-5;
      p[i] = keep + h;
      const double up = loss();
      p[i] = keep - h;
      const double down = loss();
      p[i] = keep;
      got.push_back(analytic[i]);
      want.push_back((up - down) / (2 * h));
    }
  }
  EXPECT_TRUE(test::all_close(got, want, 1e-6, 1e-9));
}

TEST(Gpt, DropoutIsKeyedAndOffInEvaluation) {
  Gpt m(tiny(0.3));
  m.build(cpu_device(), DType::f32, 5);
  MicroBatch b = batch_of(2, 6, 11, 8);
  ForwardContext ctx{true, 1, 3, b.first_sample};
  const double l1 = m.forward_backward(b, ctx, 1.0f).loss;
  const double l2 = m.forward_backward(b, ctx, 1.0f).loss;
  EXPECT_EQ(l1, l2);  // same key, same masks
  ctx.step = 4;
  EXPECT_NE(m.forward_backward(b, ctx, 1.0f).loss, l1);
  const double e1 = m.evaluate(b).loss;
  EXPECT_NE(e1, l1);
  EXPECT_EQ(m.evaluate(b).loss, e1);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST(Gpt, ShippedKjvConfigBuildsTheDocumentedModel) {
  Config cfg = load_config(std::string(KILN_SOURCE_DIR) + "/configs/gpt_kjv.yaml", {});
  const ModelConfig& m = cfg.model;
  std::unique_ptr<Model> model = create_model(cfg, ModelSpec{Shape{m.seq_len}, 256});
  model->build(cpu_device(), DType::f32, 1);
  const int64_t C = m.n_embd;
  // wte + wpe + per block (qkv, proj, fc, mlp proj weights and biases, two LayerNorms) + ln_f.
  const int64_t per_block = 12 * C * C + 13 * C;
  EXPECT_EQ(model->params().count(), 256 * C + m.seq_len * C + m.n_layer * per_block + 2 * C);
  EXPECT_EQ(model->params().count(), 842496);  // the "0.8M parameters" the config promises
  EXPECT_EQ(cfg.data.name, "text");
  EXPECT_EQ(cfg.train.global_batch % (2 * cfg.train.micro_batch), 0);  // splits over 2 ranks
}

}  // namespace
}  // namespace kiln
