// The straggler report's numbers: min, median (odd and even counts), max, the slowest and
// fastest ranks (ties go to the lowest rank), and the line that names them.
#include "launcher/rank_spread.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace kiln::test {
namespace {

TEST(RankSpread, OddAndEvenCounts) {
  RankSpread s = rank_spread({12.0, 30.0, 10.0, 14.0, 11.0});
  EXPECT_EQ(s.min, 10.0);
  EXPECT_EQ(s.median, 12.0);
  EXPECT_EQ(s.max, 30.0);
  EXPECT_EQ(s.slowest, 1);
  EXPECT_EQ(s.fastest, 2);

  s = rank_spread({4.0, 1.0, 3.0, 2.0});
  EXPECT_EQ(s.median, 2.5);
  EXPECT_EQ(s.slowest, 0);
  EXPECT_EQ(s.fastest, 1);

  s = rank_spread({7.0});
  EXPECT_EQ(s.min, 7.0);
  EXPECT_EQ(s.median, 7.0);
  EXPECT_EQ(s.slowest, 0);
}

TEST(RankSpread, TiesNameTheLowestRank) {
  const RankSpread s = rank_spread({5.0, 9.0, 5.0, 9.0});
  EXPECT_EQ(s.slowest, 1);
  EXPECT_EQ(s.fastest, 0);
}

TEST(RankSpread, LineNamesSlowestRankAndSpread) {
  const RankSpread work = rank_spread({10.0, 12.5, 10.0});
  const RankSpread wait = rank_spread({3.0, 0.5, 3.1});
  const std::string line = rank_spread_line(40, work, wait);
  EXPECT_TRUE(contains(line,
                       "ranks at step 40: work (data + forward/backward) per step min "
                       "10.00 | median 10.00 | max 12.50 ms; slowest rank 1 (+25.0% over "
                       "the median)"));
  EXPECT_TRUE(contains(line, "gradient wait per step min 0.50 (rank 1) | max 3.10 ms (rank 2)"));
  EXPECT_TRUE(contains(error_message([] { rank_spread({}); }), "no ranks"));
}

TEST(RankSpread, SlotsGatherEveryRanksNumbersThroughASum) {
  // Two ranks fill their slots; the control all-reduce adds them element-wise.
  std::vector<double> r0(4, 9.0), r1(4, 9.0), sum(4);
  fill_rank_slots(r0.data(), 0, 2, 5.0, 1.0);
  fill_rank_slots(r1.data(), 1, 2, 7.0, 2.0);
  for (size_t i = 0; i < 4; ++i) sum[i] = r0[i] + r1[i];
  std::vector<double> work, wait;
  read_rank_slots(sum.data(), 2, work, wait);
  EXPECT_EQ(work, (std::vector<double>{5.0, 7.0}));
  EXPECT_EQ(wait, (std::vector<double>{1.0, 2.0}));
  nlohmann::json record;
  report_ranks(8, work, wait, record);
  EXPECT_EQ(record["slowest_rank"], 1);
  EXPECT_EQ(record["rank_work_ms_median"], 6.0);
}

}  // namespace
}  // namespace kiln::test
