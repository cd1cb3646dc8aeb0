// The global sample order (DESIGN decision 6): one permutation per epoch keyed by (seed, epoch),
// batches that straddle epochs, and the same samples per step at any world size.
#include "core/data/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "test_util.h"

namespace kiln::test {
namespace {

std::vector<int64_t> take(GlobalSampler& s, int64_t position, int64_t count) {
  std::vector<int64_t> out(static_cast<size_t>(count));
  s.indices(position, count, out.data());
  return out;
}

TEST(GlobalSampler, EachEpochIsAPermutation) {
  GlobalSampler s(1000, 7);
  std::vector<int64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  for (int64_t epoch : {0, 1, 2, 17}) {
    std::vector<int64_t> p = s.permutation(epoch);
    EXPECT_NE(p, identity) << "epoch " << epoch << " is not shuffled";
    std::sort(p.begin(), p.end());
    EXPECT_EQ(p, identity) << "epoch " << epoch;
  }
}

TEST(GlobalSampler, DeterministicPerSeedAndEpoch) {
  GlobalSampler a(500, 3), b(500, 3), other_seed(500, 4);
  // b is asked in another order, so its cache holds other epochs in between.
  const std::vector<int64_t> b2 = b.permutation(2), b0 = b.permutation(0);
  EXPECT_EQ(a.permutation(0), b0);
  EXPECT_EQ(a.permutation(2), b2);
  EXPECT_NE(a.permutation(0), a.permutation(1));
  EXPECT_NE(a.permutation(1), a.permutation(2));
  EXPECT_NE(a.permutation(0), other_seed.permutation(0));
  // Every epoch recomputed after leaving the cache is the same.
  const std::vector<int64_t> first = a.permutation(0);
  a.permutation(5);
  a.permutation(6);
  EXPECT_EQ(a.permutation(0), first);
}

// Positions in a stream of consecutive epochs: position p is sample perm(p / n)[p % n].
TEST(GlobalSampler, BatchesStraddleEpochBoundaries) {
  const int64_t n = 10;
  GlobalSampler s(n, 11);
  const std::vector<int64_t> e0 = s.permutation(0), e1 = s.permutation(1), e2 = s.permutation(2);
  std::vector<int64_t> want = {e0[7], e0[8], e0[9], e1[0], e1[1], e1[2]};
  EXPECT_EQ(take(s, 7, 6), want);
  // A batch longer than an epoch covers three of them.
  std::vector<int64_t> long_batch = take(s, 8, 14);
  std::vector<int64_t> expect = {e0[8], e0[9]};
  expect.insert(expect.end(), e1.begin(), e1.end());
  expect.insert(expect.end(), e2.begin(), e2.begin() + 2);
  EXPECT_EQ(long_batch, expect);
  EXPECT_EQ(s.epoch_of(19), 1);
  EXPECT_EQ(s.epoch_of(20), 2);
}

// The union of all ranks' micro-batches of a step is the same multiset of samples at world 1, 2
// and 4 (accumulation adjusted so global_batch stays 24), step after step and across epochs.
TEST(GlobalSampler, StepSeesTheSameSamplesAtAnyWorldSize) {
  const int64_t n = 37, global = 24;  // 37 samples: steps straddle epochs at odd places
  struct Layout {
    int world;
    int64_t micro;
  };
  const std::vector<Layout> layouts = {{1, 24}, {1, 6}, {2, 6}, {2, 12}, {4, 6}, {4, 3}};
  for (int64_t step = 0; step < 7; ++step) {
    const int64_t cursor = step * global;
    GlobalSampler reference(n, 5);
    std::vector<int64_t> want = take(reference, cursor, global);
    std::sort(want.begin(), want.end());
    for (const Layout& l : layouts) {
      const int64_t accum = global / (l.micro * l.world);
      ASSERT_EQ(accum * l.micro * l.world, global);
      std::vector<int64_t> got;
      for (int rank = 0; rank < l.world; ++rank) {
        GlobalSampler own(n, 5);  // each rank has its own sampler
        for (int64_t m = 0; m < accum; ++m) {
          const int64_t pos = micro_batch_position(cursor, rank, accum, m, l.micro);
          std::vector<int64_t> mb = take(own, pos, l.micro);
          got.insert(got.end(), mb.begin(), mb.end());
        }
      }
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, want) << "step " << step << ", world " << l.world << ", micro " << l.micro;
    }
  }
}

// A run that shrinks from 4 ranks to 2 after step 3 goes on over the same samples as one that
// never changed: the cursor alone says where the stream is.
TEST(GlobalSampler, ResumingAtAnotherWorldSizeContinuesTheStream) {
  const int64_t n = 50, global = 8, micro = 2;
  GlobalSampler single(n, 9);
  std::vector<int64_t> want = take(single, 0, 6 * global);
  std::vector<int64_t> got;
  for (int64_t step = 0; step < 6; ++step) {
    const int world = step < 3 ? 4 : 2;
    const int64_t accum = global / (micro * world);
    for (int rank = 0; rank < world; ++rank) {
      GlobalSampler own(n, 9);
      for (int64_t m = 0; m < accum; ++m) {
        std::vector<int64_t> mb =
            take(own, micro_batch_position(step * global, rank, accum, m, micro), micro);
        got.insert(got.end(), mb.begin(), mb.end());
      }
    }
  }
  EXPECT_EQ(got, want);
}

TEST(GlobalSampler, EmptyDatasetIsAnError) {
  EXPECT_TRUE(contains(error_message([] { GlobalSampler s(0, 1); }), "the dataset is empty"));
}

}  // namespace
}  // namespace kiln::test
