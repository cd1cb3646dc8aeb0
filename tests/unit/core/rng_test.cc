// The counter-based generator is Philox4x32-10 (the published known-answer vectors), and the
// sequential generator built on it is deterministic per (seed, stream) and uniform.
#include "core/rng.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln::test {
namespace {

// Random123's known-answer vectors for philox4x32 with 10 rounds.
TEST(Philox, KnownAnswerVectors) {
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    Philox4 r = philox4x32(k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3], k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.out[i]) << "word " << i;
  }
}

TEST(Rng, DeterministicPerSeedAndStream) {
  Rng a(5, 1), b(5, 1), c(5, 2), d(6, 1);
  int same_c = 0, same_d = 0;
  for (int i = 0; i < 100; ++i) {
    const uint32_t x = a.next_u32();
    EXPECT_EQ(x, b.next_u32());
    same_c += x == c.next_u32();
    same_d += x == d.next_u32();
  }
  EXPECT_LT(same_c, 2);
  EXPECT_LT(same_d, 2);
}

// 100,000 draws of below(10): each value's count within 5 standard deviations of 10,000; the
// mean of uniform() near 1/2 and inside [0, 1).
TEST(Rng, BelowAndUniformAreUniform) {
  Rng r(123, 0);
  const int n = 100000;
  std::vector<int> counts(10, 0);
  for (int i = 0; i < n; ++i) {
    const uint64_t v = r.below(10);
    ASSERT_LT(v, 10u);
    ++counts[v];
  }
  const double sigma = std::sqrt(n * 0.1 * 0.9);
  for (int v = 0; v < 10; ++v) EXPECT_NEAR(counts[v], n / 10.0, 5 * sigma) << v;
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_EQ(r.below(1), 0u);
}

}  // namespace
}  // namespace kiln::test
