// Re-slicing optimizer state: shards written as by W ranks are read back as the slices of
// another world size (4 -> 2, 2 -> 4, 3 -> 1, arbitrary ranges) bit for bit; gaps, overlaps and
// foreign shards are errors naming the file.
#include "core/checkpoint/optim_shards.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/checkpoint/layout.h"
#include "core/error.h"
#include "core/rng.h"
#include "unit/test_util.h"

namespace kiln {
namespace {

constexpr int64_t kTotal = 1003;  // not a multiple of any world size used below

struct GlobalState {
  std::vector<float> m, v;
  GlobalState() : m(kTotal), v(kTotal) {
    Rng rng(42, 7);
    for (int64_t i = 0; i < kTotal; ++i) {
      m[i] = static_cast<float>(rng.normal());
      v[i] = static_cast<float>(rng.uniform());
    }
  }
};

// Writes the shards each rank of `world` would write for `g`.
void write_as(const std::string& dir, const GlobalState& g, int world) {
  for (int r = 0; r < world; ++r) {
    OptimShardInfo info{"adamw", shard_range(kTotal, r, world), kTotal, r, world, "fp-1"};
    write_optim_shard(dir + "/" + optim_shard_name(r, world), info,
                      {{"exp_avg", g.m.data() + info.range.begin},
                       {"exp_avg_sq", g.v.data() + info.range.begin}});
  }
}

void expect_slice(const OptimShardSet& set, const GlobalState& g, FlatRange r) {
  std::vector<float> m(r.size(), -1), v(r.size(), -1);
  set.read_range("exp_avg", r, m.data());
  set.read_range("exp_avg_sq", r, v.data());
  EXPECT_EQ(std::memcmp(m.data(), g.m.data() + r.begin, r.size() * 4), 0)
      << "exp_avg [" << r.begin << ", " << r.end << ")";
  EXPECT_EQ(std::memcmp(v.data(), g.v.data() + r.begin, r.size() * 4), 0)
      << "exp_avg_sq [" << r.begin << ", " << r.end << ")";
}

TEST(OptimShards, EvenRangesTileTheBuffer) {
  EXPECT_EQ(shard_range(10, 0, 4).begin, 0);
  EXPECT_EQ(shard_range(10, 0, 4).end, 2);
  EXPECT_EQ(shard_range(10, 1, 4).end, 5);
  EXPECT_EQ(shard_range(10, 3, 4).end, 10);
}

TEST(OptimShards, FourRanksResumeAsTwo) {
  test::TempDir dir;
  GlobalState g;
  write_as(dir.path(), g, 4);
  const OptimShardSet set = OptimShardSet::open(dir.path(), 4);
  EXPECT_EQ(set.total(), kTotal);
  EXPECT_EQ(set.optimizer(), "adamw");
  for (int r = 0; r < 2; ++r) expect_slice(set, g, shard_range(kTotal, r, 2));
  expect_slice(set, g, FlatRange{0, kTotal});
}

TEST(OptimShards, TwoRanksResumeAsFour) {
  test::TempDir dir;
  GlobalState g;
  write_as(dir.path(), g, 2);
  const OptimShardSet set = OptimShardSet::open(dir.path(), 2);
  for (int r = 0; r < 4; ++r) expect_slice(set, g, shard_range(kTotal, r, 4));
}

TEST(OptimShards, ThreeRanksResumeAsOneAndArbitraryRanges) {
  test::TempDir dir;
  GlobalState g;
  write_as(dir.path(), g, 3);
  const OptimShardSet set = OptimShardSet::open(dir.path(), 3);
  expect_slice(set, g, FlatRange{0, kTotal});
  expect_slice(set, g, FlatRange{333, 335});  // straddles the 0/1 boundary (334)
  expect_slice(set, g, FlatRange{500, 500});
  EXPECT_THROW(
      {
        std::vector<float> out(10);
        set.read_range("exp_avg", FlatRange{kTotal - 5, kTotal + 5}, out.data());
      },
      Error);
}

TEST(OptimShards, MissingShardGapAndForeignShardAreErrors) {
  test::TempDir dir;
  GlobalState g;
  write_as(dir.path(), g, 4);
  std::filesystem::remove(dir.path() + "/" + optim_shard_name(2, 4));
  try {
    OptimShardSet::open(dir.path(), 4);
    ADD_FAILURE() << "a missing shard was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find(optim_shard_name(2, 4)), std::string::npos) << e.message();
  }
  // Shard 2 rewritten with a range that leaves a gap.
  OptimShardInfo gap{
      "adamw", FlatRange{shard_range(kTotal, 2, 4).begin + 1, shard_range(kTotal, 2, 4).end},
      kTotal,  2,
      4,       "fp-1"};
  write_optim_shard(
      dir.path() + "/" + optim_shard_name(2, 4), gap,
      {{"exp_avg", g.m.data() + gap.range.begin}, {"exp_avg_sq", g.v.data() + gap.range.begin}});
  try {
    OptimShardSet::open(dir.path(), 4);
    ADD_FAILURE() << "a gap was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("a gap"), std::string::npos) << e.message();
  }
  // Shard 2 from another model (fingerprint) or optimizer.
  OptimShardInfo foreign{"sgd", shard_range(kTotal, 2, 4), kTotal, 2, 4, "fp-1"};
  write_optim_shard(dir.path() + "/" + optim_shard_name(2, 4), foreign,
                    {{"exp_avg", g.m.data() + foreign.range.begin},
                     {"exp_avg_sq", g.v.data() + foreign.range.begin}});
  try {
    OptimShardSet::open(dir.path(), 4);
    ADD_FAILURE() << "a shard of another optimizer was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("not from one checkpoint"), std::string::npos) << e.message();
  }
}

}  // namespace
}  // namespace kiln
