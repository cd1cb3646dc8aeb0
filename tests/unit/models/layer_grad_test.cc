// Every layer's backward against central finite differences in float64 on random inputs, and
// the gradient of softmax cross-entropy with respect to the logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/rng.h"
#include "grad_check.h"
#include "test_util.h"

namespace kiln::test {
namespace {

ForwardContext training_ctx() {
  ForwardContext ctx;
  ctx.training = true;
  ctx.seed = 5;
  ctx.step = 3;
  ctx.first_sample = 40;
  return ctx;
}

// Inputs at least 0.1 away from 0: ReLU has a kink there, and a difference quotient that
// straddles it measures neither side's slope. 0.1 is 10^4 steps away.
Tensor away_from_zero(const Shape& s, uint64_t seed) {
  Tensor x = random_tensor(s, DType::f64, seed);
  double* p = x.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i)
    p[i] = (p[i] < 0 ? -1 : 1) * (0.1 + 0.9 * std::fabs(p[i]));
  return x;
}

// Distinct values 0.01 apart in a random order: a max-pool window's maximum then leads the
// runner-up by at least 0.01 (10^3 steps), so no perturbation changes which element wins.
Tensor distinct_values(const Shape& s, uint64_t seed) {
  Tensor x = Tensor::empty(s, DType::f64, cpu_device());
  std::vector<int64_t> order(static_cast<size_t>(x.numel()));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed, 3);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  for (size_t i = 0; i < order.size(); ++i) {
    x.data<double>()[i] = 0.01 * (static_cast<double>(order[i]) - order.size() / 2.0);
  }
  return x;
}

TEST(LayerGradient, Linear) {
  auto t = f64_layer(std::make_unique<Linear>(7, 5), 1);
  check_layer_gradients(*t, random_tensor(Shape{3, 7}, DType::f64, 2), training_ctx(), 3);
  auto one = f64_layer(std::make_unique<Linear>(1, 1), 4);
  check_layer_gradients(*one, random_tensor(Shape{1, 1}, DType::f64, 5), training_ctx(), 6);
}

struct ConvSetup {
  int64_t in, out, k, stride, pad;
  Shape x;
};

TEST(LayerGradient, Conv2d) {
  const std::vector<ConvSetup> setups = {
      {3, 4, 3, 1, 1, Shape{2, 3, 7, 9}},  // same padding, odd sizes
      {3, 4, 3, 2, 1, Shape{2, 3, 7, 9}},  // stride 2, padding 1
      {2, 3, 3, 2, 0, Shape{2, 2, 8, 7}},  // stride 2, padding 0, last column unused
      {3, 2, 1, 1, 0, Shape{2, 3, 5, 5}},  // 1x1
      {2, 3, 5, 1, 2, Shape{1, 2, 6, 5}},  // 5x5, padding 2
      {1, 1, 3, 1, 0, Shape{1, 1, 3, 3}},  // one output pixel
  };
  uint64_t seed = 10;
  for (const ConvSetup& s : setups) {
    seed += 3;
    SCOPED_TRACE(::testing::Message() << "conv " << s.in << "->" << s.out << " k" << s.k << " s"
                                      << s.stride << " p" << s.pad << " x " << s.x.str());
    auto t = f64_layer(std::make_unique<Conv2d>(s.in, s.out, s.k, s.stride, s.pad), seed);
    check_layer_gradients(*t, random_tensor(s.x, DType::f64, seed + 1), training_ctx(), seed + 2);
  }
}

TEST(LayerGradient, MaxPool2d) {
  // 2x2 stride 2 on odd sizes (the last row and column get no gradient), overlapping 3x3
  // stride 2 and 3x3 stride 1 windows (an input can win several windows).
  const std::vector<std::pair<std::pair<int64_t, int64_t>, Shape>> setups = {
      {{2, 2}, Shape{2, 3, 7, 9}}, {{3, 2}, Shape{2, 2, 7, 7}}, {{3, 1}, Shape{1, 2, 5, 6}}};
  uint64_t seed = 30;
  for (const auto& [ks, shape] : setups) {
    seed += 3;
    SCOPED_TRACE(::testing::Message() << "kernel " << ks.first << " stride " << ks.second);
    auto t = f64_layer(std::make_unique<MaxPool2d>(ks.first, ks.second), seed);
    check_layer_gradients(*t, distinct_values(shape, seed + 1), training_ctx(), seed + 2);
  }
}

TEST(LayerGradient, ReLU) {
  auto t = f64_layer(std::make_unique<ReLU>(), 1);
  check_layer_gradients(*t, away_from_zero(Shape{4, 3, 5}, 41), training_ctx(), 42);
}

TEST(LayerGradient, GELU) {
  auto t = f64_layer(std::make_unique<GELU>(), 1);
  check_layer_gradients(*t, random_tensor(Shape{4, 33}, DType::f64, 43, -4, 4), training_ctx(), 44);
}

// The key (seed, step, layer, first sample) is fixed by the context, so every evaluation of the
// difference quotient sees the same mask.
TEST(LayerGradient, Dropout) {
  auto t = f64_layer(std::make_unique<Dropout>(0.4f, 2), 1);
  check_layer_gradients(*t, random_tensor(Shape{6, 17}, DType::f64, 45), training_ctx(), 46);
  // Not training: the identity.
  ForwardContext eval;
  eval.training = false;
  check_layer_gradients(*t, random_tensor(Shape{2, 5}, DType::f64, 47), eval, 48);
}

TEST(LayerGradient, Flatten) {
  auto t = f64_layer(std::make_unique<Flatten>(), 1);
  check_layer_gradients(*t, random_tensor(Shape{3, 2, 4, 5}, DType::f64, 49), training_ctx(), 50);
}

// dL/dlogits of the summed loss times grad_scale, against differences of the loss sum the op
// reports in its stats.
TEST(LayerGradient, SoftmaxCrossEntropyWrtLogits) {
  Ops& ops = cpu_device().ops();
  for (float scale : {1.0f, 0.125f}) {
    Tensor logits = random_tensor(Shape{5, 7}, DType::f64, 51, -3, 3);
    Tensor labels = Tensor::from_vector(std::vector<int32_t>{0, 6, 3, 3, 1}, Shape{5});
    Tensor stats = Tensor::zeros(Shape{2}, DType::f64, cpu_device());
    Tensor dlogits = Tensor::zeros(logits.shape(), DType::f64, cpu_device());
    ops.softmax_xent(logits, labels, &dlogits, scale, stats);
    auto loss = [&] {
      ops.softmax_xent(logits, labels, nullptr, 1.0f, stats);
      return stats.data<double>()[0] * scale;
    };
    EXPECT_TRUE(all_close(as_doubles(dlogits),
                          numeric_gradient(logits.data<double>(), logits.numel(), loss), kFdRtol,
                          kFdAtol))
        << "grad_scale " << scale;
  }
}

}  // namespace
}  // namespace kiln::test
