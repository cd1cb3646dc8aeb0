// AdamW and SGD through the Optimizer interface on a small flat buffer: steps against values
// computed by hand, weight decay only where the parameter asks for it (not biases), gradient
// scaling, and the segments of the flat buffer that share a decay setting.
#include "optim/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"

namespace kiln::test {
namespace {

// A weight (2, 3), decayed, and a bias (3), not decayed, in f32 on the CPU, every value 1.
struct TinyModel {
  ParamStore store;
  int w, b;
  TinyModel() {
    w = store.declare("layer.weight", Shape{2, 3}, true);
    b = store.declare("layer.bias", Shape{3}, false);
    store.finalize(cpu_device(), DType::f32);
    fill(store.param(w), 1.0f);
    fill(store.param(b), 1.0f);
  }
  static void fill(Tensor t, float v) {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = v;
  }
  void set_grads(float gw, float gb) {
    fill(store.grad(w), gw);
    fill(store.grad(b), gb);
  }
  std::vector<double> weight() const { return as_doubles(store.param(w)); }
  std::vector<double> bias() const { return as_doubles(store.param(b)); }
};

std::vector<double> all(double v, size_t n) { return std::vector<double>(n, v); }

OptimConfig adamw_config(double weight_decay) {
  OptimConfig c;
  c.name = "adamw";
  c.beta1 = 0.9;
  c.beta2 = 0.999;
  c.eps = 1e-8;
  c.weight_decay = weight_decay;
  return c;
}

// With a constant gradient g the bias-corrected moments are exactly g and g^2, so each step
// moves a parameter by lr * g / (|g| + eps) = lr * sign(g), after decaying weights by
// (1 - lr * wd): weights 1 -> 0.95 - 0.1 = 0.85 -> 0.7075 -> 0.572125; biases (not decayed,
// g < 0) 1 -> 1.1 -> 1.2 -> 1.3.
TEST(AdamW, ConstantGradientStepsByLearningRate) {
  TinyModel m;
  auto opt = create_optimizer(adamw_config(0.5), m.store);
  EXPECT_EQ(opt->name(), "adamw");
  const double want_w[] = {0.85, 0.7075, 0.572125}, want_b[] = {1.1, 1.2, 1.3};
  for (int s = 0; s < 3; ++s) {
    m.set_grads(2.0f, -3.0f);
    opt->step(m.store, 0.1, 1.0f);
    EXPECT_TRUE(all_close(m.weight(), all(want_w[s], 6), 1e-6, 0)) << "step " << s + 1;
    EXPECT_TRUE(all_close(m.bias(), all(want_b[s], 3), 1e-6, 0)) << "step " << s + 1;
  }
  EXPECT_EQ(opt->steps_taken(), 3);
  // Moments: (1 - 0.9^3) g and (1 - 0.999^3) g^2.
  std::vector<NamedState> state = opt->state();
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].name, "exp_avg");
  EXPECT_EQ(state[1].name, "exp_avg_sq");
  std::vector<double> m1 = as_doubles(*state[0].tensor), m2 = as_doubles(*state[1].tensor);
  const int64_t wo = m.store.infos()[m.w].offset, bo = m.store.infos()[m.b].offset;
  EXPECT_NEAR(m1[wo], 0.271 * 2, 1e-6);
  EXPECT_NEAR(m1[bo], 0.271 * -3, 1e-6);
  EXPECT_NEAR(m2[wo], 0.002997001 * 4, 1e-8);
  EXPECT_NEAR(m2[bo], 0.002997001 * 9, 1e-8);
  // Padding between parameters has zero gradient and stays zero.
  EXPECT_EQ(as_doubles(m.store.params())[wo + 6], 0.0);
}

// Three steps with changing gradients, lr and grad_scale, against the update worked out in
// double here, one line per formula.
TEST(AdamW, ChangingGradientsMatchHandComputedSteps) {
  TinyModel m;
  auto opt = create_optimizer(adamw_config(0.1), m.store);
  const double g[3] = {0.5, -1.0, 2.0}, lr[3] = {0.01, 0.02, 0.03};
  const float scale[3] = {1.0f, 0.5f, 0.25f};
  double p = 1.0, mom = 0, var = 0;     // a weight
  double pb = 1.0, momb = 0, varb = 0;  // a bias, gradient -g
  for (int t = 1; t <= 3; ++t) {
    m.set_grads(static_cast<float>(g[t - 1]), static_cast<float>(-g[t - 1]));
    opt->step(m.store, lr[t - 1], scale[t - 1]);
    const double gs = g[t - 1] * scale[t - 1];
    const double bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.999, t);
    p *= 1 - lr[t - 1] * 0.1;
    mom = 0.9 * mom + 0.1 * gs;
    var = 0.999 * var + 0.001 * gs * gs;
    p -= lr[t - 1] / bc1 * mom / (std::sqrt(var) / std::sqrt(bc2) + 1e-8);
    momb = 0.9 * momb + 0.1 * -gs;
    varb = 0.999 * varb + 0.001 * gs * gs;
    pb -= lr[t - 1] / bc1 * momb / (std::sqrt(varb) / std::sqrt(bc2) + 1e-8);
    EXPECT_TRUE(all_close(m.weight(), all(p, 6), 1e-6, 0)) << "step " << t;
    EXPECT_TRUE(all_close(m.bias(), all(pb, 3), 1e-6, 0)) << "step " << t;
  }
}

OptimConfig sgd_config(double momentum, bool nesterov, double weight_decay) {
  OptimConfig c;
  c.name = "sgd";
  c.momentum = momentum;
  c.nesterov = nesterov;
  c.weight_decay = weight_decay;
  return c;
}

// Momentum 0.9, lr 0.1, gradient 1: the buffer is 1, 1.9, 2.71, so parameters go
// 1 -> 0.9 -> 0.71 -> 0.439.
TEST(Sgd, MomentumStepsMatchHandComputedValues) {
  TinyModel m;
  auto opt = create_optimizer(sgd_config(0.9, false, 0.0), m.store);
  EXPECT_EQ(opt->name(), "sgd");
  const double want[] = {0.9, 0.71, 0.439};
  for (int s = 0; s < 3; ++s) {
    m.set_grads(1.0f, 1.0f);
    opt->step(m.store, 0.1, 1.0f);
    EXPECT_TRUE(all_close(m.weight(), all(want[s], 6), 1e-6, 0)) << "step " << s + 1;
    EXPECT_TRUE(all_close(m.bias(), all(want[s], 3), 1e-6, 0)) << "step " << s + 1;
  }
  ASSERT_EQ(opt->state().size(), 1u);
  EXPECT_EQ(opt->state()[0].name, "momentum");
  EXPECT_NEAR(as_doubles(*opt->state()[0].tensor)[0], 2.71, 1e-6);
}

// Nesterov steps by g + momentum * buffer: 1.9, 2.71, 3.439, so 1 -> 0.81 -> 0.539 -> 0.1951.
TEST(Sgd, NesterovStepsMatchHandComputedValues) {
  TinyModel m;
  auto opt = create_optimizer(sgd_config(0.9, true, 0.0), m.store);
  const double want[] = {0.81, 0.539, 0.1951};
  for (int s = 0; s < 3; ++s) {
    m.set_grads(1.0f, 1.0f);
    opt->step(m.store, 0.1, 1.0f);
    EXPECT_TRUE(all_close(m.weight(), all(want[s], 6), 1e-6, 0)) << "step " << s + 1;
  }
}

// With a zero gradient only weight decay moves a parameter: weights shrink by (1 - lr * wd)
// per step (0.99, 0.9801, 0.970299); biases are not decayed and stay 1.
TEST(Sgd, WeightDecayAppliesToWeightsNotBiases) {
  TinyModel m;
  auto opt = create_optimizer(sgd_config(0.0, false, 0.1), m.store);
  const double want[] = {0.99, 0.9801, 0.970299};
  for (int s = 0; s < 3; ++s) {
    m.set_grads(0.0f, 0.0f);
    opt->step(m.store, 0.1, 1.0f);
    EXPECT_TRUE(all_close(m.weight(), all(want[s], 6), 1e-6, 0)) << "step " << s + 1;
    EXPECT_TRUE(all_close(m.bias(), all(1.0, 3), 0, 0)) << "step " << s + 1;
  }
}

// The clipping factor scales the gradient before the update: 1 - 0.1 * (0.5 * 2) = 0.9.
TEST(Sgd, GradScaleMultipliesTheGradient) {
  TinyModel m;
  auto opt = create_optimizer(sgd_config(0.0, false, 0.0), m.store);
  m.set_grads(2.0f, 2.0f);
  opt->step(m.store, 0.1, 0.5f);
  EXPECT_TRUE(all_close(m.weight(), all(0.9, 6), 1e-6, 0));
}

TEST(Optimizer, RefusesNonF32ParametersAndUnknownNames) {
  ParamStore f64;
  f64.declare("w", Shape{2}, true);
  f64.finalize(cpu_device(), DType::f64);
  EXPECT_TRUE(contains(error_message([&] { create_optimizer(adamw_config(0), f64); }),
                       "optimizers keep f32 master weights"));
  TinyModel m;
  OptimConfig c;
  c.name = "lamb";
  EXPECT_TRUE(contains(error_message([&] { create_optimizer(c, m.store); }),
                       "optim.name = 'lamb' is not an optimizer"));
}

// Consecutive parameters with the same decay setting merge into one segment; the segments
// tile the buffer, padding included.
TEST(ParamSegments, RunsOfTheSameDecaySetting) {
  ParamStore s;
  s.declare("conv.weight", Shape{2, 3}, true);  // 6 -> 16 with padding
  s.declare("fc.weight", Shape{4, 5}, true);    // 20 -> 32
  s.declare("fc.bias", Shape{4}, false);        // 4 -> 16
  s.declare("out.weight", Shape{17}, true);     // 17 -> 32
  s.declare("out.bias", Shape{3}, false);       // 3 -> 16
  s.declare("norm.bias", Shape{16}, false);     // 16
  std::vector<ParamSegment> seg = param_segments(s);
  ASSERT_EQ(seg.size(), 4u);
  const int64_t want[4][3] = {{0, 48, 1}, {48, 64, 0}, {64, 96, 1}, {96, 128, 0}};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(seg[i].begin, want[i][0]) << "segment " << i;
    EXPECT_EQ(seg[i].end, want[i][1]) << "segment " << i;
    EXPECT_EQ(seg[i].decay, want[i][2] == 1) << "segment " << i;
  }
  EXPECT_EQ(s.total(), 128);
}

}  // namespace
}  // namespace kiln::test
