// Clock offsets from all-reduce rounds: the bound in closed form, the tightest rounds winning,
// a simulated pair of skewed clocks whose true offset always lies within the bound, rounds that
// contradict each other, and a world of one.
#include "comm/clock_sync.h"

#include <gtest/gtest.h>

#include <random>

#include "test_util.h"

namespace kiln::test {
namespace {

TEST(ClockOffset, OneRoundInClosedForm) {
  // Rank 0 was inside the all-reduce during [0, 10] of its clock, this rank during
  // [1005, 1012] of its own: offset in [1005 - 10, 1012 - 0] = [995, 1012].
  const ClockOffset o = clock_offset_from_rounds({{1005, 1012}}, {{0, 10}});
  EXPECT_DOUBLE_EQ(o.offset_us, 1003.5);
  EXPECT_DOUBLE_EQ(o.error_us, 8.5);
  EXPECT_DOUBLE_EQ(o.root_start_us, 0);
}

TEST(ClockOffset, RoundsIntersect) {
  // Round 1 bounds [995, 1012]; round 2 ([2001, 2003] vs [1000, 1004]) bounds [997, 1003].
  const ClockOffset o =
      clock_offset_from_rounds({{1005, 1012}, {2001, 2003}}, {{0, 10}, {1000, 1004}});
  EXPECT_DOUBLE_EQ(o.offset_us, 1000.0);
  EXPECT_DOUBLE_EQ(o.error_us, 3.0);
}

TEST(ClockOffset, SimulatedSkewLiesWithinTheBound) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> jitter(0.0, 50.0);
  for (double skew : {-3.2e9, -17.25, 0.0, 0.5, 86400e6}) {
    std::vector<ClockRound> root, mine;
    double t = 1000;  // true time, us
    for (int i = 0; i < 16; ++i) {
      // Each rank enters at its own time; the all-reduce completes on each once both have
      // entered, plus a latency of its own.
      const double enter0 = t + jitter(rng), enter1 = t + jitter(rng);
      const double meet = std::max(enter0, enter1);
      root.push_back({enter0, meet + jitter(rng)});
      mine.push_back({enter1 + skew, meet + jitter(rng) + skew});
      t = meet + 100;
    }
    const ClockOffset o = clock_offset_from_rounds(mine, root);
    EXPECT_LE(std::abs(o.offset_us - skew), o.error_us + 1e-3) << skew;
    EXPECT_LT(o.error_us, 50.0) << skew;  // the best round is far tighter than one jitter
  }
}

TEST(ClockOffset, ContradictoryRoundsAreAnError) {
  // Round 1 says offset >= 995, round 2 says offset <= 10: a clock jumped.
  const std::string m = error_message([] {
    clock_offset_from_rounds({{1005, 1012}, {5, 10}}, {{0, 10}, {0, 10}});
  });
  EXPECT_TRUE(contains(m, "do not intersect"));
  EXPECT_TRUE(contains(error_message([] { clock_offset_from_rounds({}, {}); }), "0 rounds"));
}

TEST(ClockOffset, WorldOfOneIsZero) {
  std::unique_ptr<Communicator> comm = make_self_communicator();
  const ClockOffset o = measure_clock_offset(*comm, 4);
  EXPECT_EQ(o.offset_us, 0.0);
  EXPECT_EQ(o.error_us, 0.0);
  EXPECT_GT(o.root_start_us, 0.0);
}

}  // namespace
}  // namespace kiln::test
