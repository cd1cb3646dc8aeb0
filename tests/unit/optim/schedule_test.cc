// The learning-rate schedule at its defining points (warmup, cosine, linear, constant, floor)
// and the gradient-clipping factor.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "optim/optimizer.h"

namespace kiln::test {
namespace {

// Peak 1, 10 warmup steps, 110 steps: decay runs over steps 10..109, t = (step - 10) / 99.
OptimConfig schedule(const std::string& kind, double min_ratio = 0.0) {
  OptimConfig c;
  c.lr = 1.0;
  c.warmup_steps = 10;
  c.schedule = kind;
  c.min_lr_ratio = min_ratio;
  return c;
}

TEST(LearningRate, WarmupRisesLinearlyToThePeak) {
  for (const char* kind : {"cosine", "linear", "constant"}) {
    OptimConfig c = schedule(kind);
    EXPECT_DOUBLE_EQ(learning_rate(c, 0, 110), 0.1) << kind;
    EXPECT_DOUBLE_EQ(learning_rate(c, 4, 110), 0.5) << kind;
    EXPECT_DOUBLE_EQ(learning_rate(c, 9, 110), 1.0) << kind;
    EXPECT_DOUBLE_EQ(learning_rate(c, 10, 110), 1.0) << kind;
  }
}

TEST(LearningRate, CosineFollowsHalfACosineToTheFloor) {
  OptimConfig c = schedule("cosine");
  EXPECT_NEAR(learning_rate(c, 43, 110), 0.75, 1e-12);  // t = 1/3: (1 + cos(pi/3)) / 2
  EXPECT_NEAR(learning_rate(c, 76, 110), 0.25, 1e-12);  // t = 2/3
  EXPECT_NEAR(learning_rate(c, 109, 110), 0.0, 1e-12);  // the last step reaches the floor
  OptimConfig f = schedule("cosine", 0.1);
  EXPECT_NEAR(learning_rate(f, 43, 110), 0.1 + 0.9 * 0.75, 1e-12);
  EXPECT_NEAR(learning_rate(f, 109, 110), 0.1, 1e-12);
  EXPECT_NEAR(learning_rate(f, 500, 110), 0.1, 1e-12);  // past the end: stays at the floor
}

TEST(LearningRate, LinearFallsInAStraightLine) {
  OptimConfig c = schedule("linear", 0.25);
  EXPECT_NEAR(learning_rate(c, 43, 110), 0.25 + 0.75 * (2.0 / 3.0), 1e-12);
  EXPECT_NEAR(learning_rate(c, 76, 110), 0.25 + 0.75 * (1.0 / 3.0), 1e-12);
  EXPECT_NEAR(learning_rate(c, 109, 110), 0.25, 1e-12);
}

TEST(LearningRate, ConstantStaysAtThePeak) {
  OptimConfig c = schedule("constant", 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(c, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(c, 109, 110), 1.0);
}

TEST(LearningRate, WithoutWarmupStartsAtThePeak) {
  OptimConfig c = schedule("cosine");
  c.warmup_steps = 0;
  EXPECT_DOUBLE_EQ(learning_rate(c, 0, 5), 1.0);
  EXPECT_NEAR(learning_rate(c, 2, 5), 0.5, 1e-12);  // t = 1/2
  EXPECT_NEAR(learning_rate(c, 4, 5), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(learning_rate(c, 0, 1), 1.0);  // a single step has nothing to decay over
}

// PyTorch's clip_grad_norm_: max_norm / (norm + 1e-6), capped at 1.
TEST(ClipFactor, BringsTheNormDownToTheLimit) {
  EXPECT_DOUBLE_EQ(clip_factor(10.0, 1.0), 1.0 / (10.0 + 1e-6));
  EXPECT_DOUBLE_EQ(clip_factor(4.0, 2.0), 2.0 / (4.0 + 1e-6));
  EXPECT_DOUBLE_EQ(clip_factor(1.0, 1.0), 1.0 / (1.0 + 1e-6));
  EXPECT_DOUBLE_EQ(clip_factor(0.5, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(clip_factor(10.0, 0.0), 1.0);  // clipping off
  // A non-finite norm is left to the non-finite handling (the step is skipped).
  EXPECT_DOUBLE_EQ(clip_factor(std::numeric_limits<double>::infinity(), 1.0), 1.0);
  EXPECT_DOUBLE_EQ(clip_factor(std::nan(""), 1.0), 1.0);
}

}  // namespace
}  // namespace kiln::test
