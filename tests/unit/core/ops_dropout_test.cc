// Dropout's statistical and keying properties on the CPU kernels: the keep rate, determinism for
// a fixed key, different masks for different keys, and masks that do not depend on how a batch
// is split into micro-batches or ranks (DESIGN decision 6). The exact bits are checked against
// the plain-loop reference in op_cases_pointwise.cc.
#include <gtest/gtest.h>

#include <cmath>

#include "core/device.h"
#include "core/ops.h"
#include "test_util.h"

namespace kiln::test {
namespace {

struct DropoutRun {
  std::vector<double> y;
  std::vector<uint8_t> mask;
};

DropoutRun run_dropout(const Tensor& x, float p, const DropoutKey& key) {
  Ops& ops = cpu_device().ops();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), cpu_device());
  Tensor mask = Tensor::empty(x.shape(), DType::u8, cpu_device());
  ops.dropout_forward(x, y, mask, p, key);
  return DropoutRun{as_doubles(y), mask.to_vector<uint8_t>()};
}

Tensor ones(const Shape& s, DType t) {
  Tensor x = Tensor::empty(s, t, cpu_device());
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (t == DType::f32)
      x.data<float>()[i] = 1.0f;
    else
      x.data<double>()[i] = 1.0;
  }
  return x;
}

size_t count_kept(const std::vector<uint8_t>& mask) {
  size_t k = 0;
  for (uint8_t m : mask) k += m;
  return k;
}

// The share kept is 1 - p within 5 standard deviations of the binomial, for the whole tensor and
// for each of the four Philox lanes; kept values are scaled by exactly 1 / (1 - p).
TEST(Dropout, KeepRateIsOneMinusP) {
  const int64_t n = 64, d = 1000;
  for (float p : {0.1f, 0.5f, 0.9f}) {
    DropoutRun r = run_dropout(ones(Shape{n, d}, DType::f64), p, DropoutKey{42, 7, 1, 0});
    const double total = static_cast<double>(n * d);
    const double sigma = std::sqrt(p * (1.0 - p) / total);
    const double rate = static_cast<double>(count_kept(r.mask)) / total;
    EXPECT_NEAR(rate, 1.0 - p, 5 * sigma) << "p = " << p;
    for (int lane = 0; lane < 4; ++lane) {
      size_t kept = 0, seen = 0;
      for (int64_t i = lane; i < n * d; i += 4) {
        kept += r.mask[static_cast<size_t>(i)];
        ++seen;
      }
      EXPECT_NEAR(static_cast<double>(kept) / seen, 1.0 - p, 5 * sigma * 2) << "lane " << lane;
    }
    const double scale = 1.0 / (1.0 - static_cast<double>(p));
    for (size_t i = 0; i < r.y.size(); ++i) {
      ASSERT_EQ(r.y[i], r.mask[i] ? scale : 0.0) << "element " << i;
    }
  }
}

TEST(Dropout, ZeroProbabilityIsTheIdentity) {
  Tensor x = random_tensor(Shape{5, 13}, DType::f32, 3);
  DropoutRun r = run_dropout(x, 0.0f, DropoutKey{1, 2, 3, 4});
  EXPECT_EQ(count_kept(r.mask), 65u);
  EXPECT_TRUE(all_close(r.y, as_doubles(x), 0, 0));
}

TEST(Dropout, SameKeySameMaskOtherKeysOtherMasks) {
  Tensor x = ones(Shape{16, 257}, DType::f32);
  const DropoutKey base{0x0123456789abcdefull, 100, 2, 5000};
  DropoutRun a = run_dropout(x, 0.5f, base);
  DropoutRun b = run_dropout(x, 0.5f, base);
  EXPECT_EQ(a.mask, b.mask);

  auto differing = [&](const DropoutKey& k) {
    DropoutRun o = run_dropout(x, 0.5f, k);
    size_t diff = 0;
    for (size_t i = 0; i < o.mask.size(); ++i) diff += o.mask[i] != a.mask[i];
    return static_cast<double>(diff) / static_cast<double>(o.mask.size());
  };
  // Independent masks at p = 0.5 differ in about half of the elements.
  DropoutKey k = base;
  k.step = 101;
  EXPECT_NEAR(differing(k), 0.5, 0.05) << "another step";
  k = base;
  k.layer = 3;
  EXPECT_NEAR(differing(k), 0.5, 0.05) << "another layer";
  k = base;
  k.seed ^= 1;
  EXPECT_NEAR(differing(k), 0.5, 0.05) << "another seed (low word)";
  k = base;
  k.seed ^= 1ull << 40;
  EXPECT_NEAR(differing(k), 0.5, 0.05) << "another seed (high word)";
  k = base;
  k.first_sample = 6000;
  EXPECT_NEAR(differing(k), 0.5, 0.05) << "other samples";
}

// Dropout over samples [1000, 1008) in one call equals two calls over [1000, 1004) and
// [1004, 1008) with first_sample set accordingly: what a sample gets does not depend on which
// micro-batch or rank it falls in.
TEST(Dropout, MaskDoesNotDependOnHowSamplesAreSplit) {
  for (DType t : {DType::f32, DType::f64}) {
    const int64_t per = 37;
    Tensor x = random_tensor(Shape{8, per}, t, 11);
    const DropoutKey whole{77, 3, 1, 1000};
    DropoutRun all = run_dropout(x, 0.3f, whole);
    DropoutKey first = whole, second = whole;
    second.first_sample = 1004;
    DropoutRun lo = run_dropout(x.view(0, Shape{4, per}), 0.3f, first);
    DropoutRun hi = run_dropout(x.view(4 * per, Shape{4, per}), 0.3f, second);
    std::vector<uint8_t> mask = lo.mask;
    mask.insert(mask.end(), hi.mask.begin(), hi.mask.end());
    std::vector<double> y = lo.y;
    y.insert(y.end(), hi.y.begin(), hi.y.end());
    EXPECT_EQ(mask, all.mask) << dtype_name(t);
    EXPECT_TRUE(all_close(y, all.y, 0, 0)) << dtype_name(t);
    // One sample at a time too.
    for (int64_t s = 0; s < 8; ++s) {
      DropoutKey k = whole;
      k.first_sample = 1000 + s;
      DropoutRun one = run_dropout(x.view(s * per, Shape{1, per}), 0.3f, k);
      EXPECT_TRUE(std::equal(one.mask.begin(), one.mask.end(), all.mask.begin() + s * per))
          << "sample " << s;
    }
  }
}

TEST(Dropout, RejectsProbabilityOutsideZeroToOne) {
  Tensor x = random_tensor(Shape{2, 3}, DType::f32, 1);
  EXPECT_THROW(run_dropout(x, 1.0f, DropoutKey{}), Error);
  EXPECT_THROW(run_dropout(x, -0.1f, DropoutKey{}), Error);
}

}  // namespace
}  // namespace kiln::test
