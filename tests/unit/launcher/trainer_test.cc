// Gradient accumulation from global_batch, micro_batch and the world size (DESIGN decision 6):
// a world the batch does not split over is an error naming the world sizes that work.
#include "launcher/trainer.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace kiln::test {
namespace {

TEST(AccumulationSteps, GlobalBatchOverMicroBatchTimesWorld) {
  Config cfg;
  cfg.train.global_batch = 64;
  cfg.train.micro_batch = 16;
  EXPECT_EQ(accumulation_steps(cfg, 1), 4);
  EXPECT_EQ(accumulation_steps(cfg, 2), 2);
  EXPECT_EQ(accumulation_steps(cfg, 4), 1);
}

TEST(AccumulationSteps, WorldThatDoesNotDivideNamesTheValidWorlds) {
  Config cfg;
  cfg.train.global_batch = 64;
  cfg.train.micro_batch = 16;
  std::string m = error_message([&] { accumulation_steps(cfg, 3); });
  EXPECT_TRUE(contains(m, "cannot be split into micro-batches of 16 over 3 ranks"));
  EXPECT_TRUE(contains(m, "World sizes that work with these batches: 1, 2, 4;"));
  m = error_message([&] { accumulation_steps(cfg, 8); });
  EXPECT_TRUE(contains(m, "over 8 ranks"));
}

}  // namespace
}  // namespace kiln::test
