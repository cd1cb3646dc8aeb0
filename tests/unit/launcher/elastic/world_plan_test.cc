// World size choice and placement: the largest world in [min, max] that the slots hold and that
// splits the global batch; ranks fill hosts in order; and the start-up errors.
#include "launcher/elastic/world_plan.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace kiln::elastic {
namespace {

using test::contains;
using test::error_message;

TEST(WorldPlan, ExactWorldSizes) {
  // 48 = 8 x 6: worlds 1, 2, 3, 6 leave no remainder.
  EXPECT_EQ(exact_world_sizes(BatchShape{48, 8}, 1, 8), (std::vector<int>{1, 2, 3, 6}));
  EXPECT_EQ(exact_world_sizes(BatchShape{48, 8}, 4, 5), (std::vector<int>{}));
}

TEST(WorldPlan, LargestExactWorldFillsHostsInOrder) {
  const std::vector<HostSlots> hosts = {{"a", 2}, {"b", 2}};
  auto p = plan_world(hosts, 1, 8, BatchShape{32, 8});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->world, 4);
  EXPECT_EQ(p->mpirun_hosts(), "a:2,b:2");
  EXPECT_EQ(p->host_of_rank(0), "a");
  EXPECT_EQ(p->host_of_rank(1), "a");
  EXPECT_EQ(p->host_of_rank(2), "b");
  EXPECT_EQ(p->host_of_rank(3), "b");

  // 3 slots, but 32 / 8 splits over 1, 2 and 4 only: the world is 2, on the first host.
  p = plan_world({{"a", 2}, {"b", 1}}, 1, 8, BatchShape{32, 8});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->world, 2);
  EXPECT_EQ(p->mpirun_hosts(), "a:2");

  // max_np caps it; min_np above what fits gives none.
  p = plan_world(hosts, 1, 2, BatchShape{32, 8});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->world, 2);
  EXPECT_FALSE(plan_world({{"a", 2}}, 3, 4, BatchShape{32, 8}));
  // Ranks straddle hosts when the first is too small.
  p = plan_world({{"a", 1}, {"b", 4}}, 1, 4, BatchShape{32, 8});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->mpirun_hosts(), "a:1,b:3");
  EXPECT_EQ(p->world, 4);
  EXPECT_EQ(p->host_of_rank(3), "b");
}

TEST(WorldPlan, StartUpErrorsSayWhatToChange) {
  const std::vector<HostSlots> hosts = {{"a", 2}, {"b", 2}};
  const BatchShape b{32, 8};
  EXPECT_NO_THROW(check_world_range(hosts, 2, 4, b, "train.global_batch"));
  EXPECT_TRUE(contains(error_message([&] { check_world_range(hosts, 6, 8, b, "gb"); }),
                       "--min-np 6 is above the 4 slot(s) the hosts offer (a:2, b:2)"));
  EXPECT_TRUE(contains(error_message([&] { check_world_range(hosts, 3, 2, b, "gb"); }),
                       "--min-np 3 is above --max-np 2"));
  const std::string e = error_message(
      [&] { check_world_range(hosts, 3, 3, BatchShape{32, 8}, "train.global_batch (x.yaml:7)"); });
  EXPECT_TRUE(contains(e, "train.global_batch (x.yaml:7) = 32 with train.micro_batch = 8 splits "
                          "exactly over no world size in [3, 3]"));
  EXPECT_TRUE(contains(e, "world sizes that work: 1, 2, 4"));
}

}  // namespace
}  // namespace kiln::elastic
