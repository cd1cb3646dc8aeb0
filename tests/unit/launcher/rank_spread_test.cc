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

}  // namespace
}  // namespace kiln::test
