// The 16-bit float conversions: round to nearest even (ties, subnormals, overflow to infinity),
// infinities and NaN kept, exact round trips of every 16-bit pattern, and agreement with an
// independent rounding over a sweep of float bit patterns.
#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace kiln::test {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint32_t to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

uint16_t bf16(float f) { return f32_to_bf16(f).bits; }
uint16_t f16(float f) { return f32_to_f16(f).bits; }

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16(-2.0f), 0xc000);
  EXPECT_EQ(bf16(0.0f), 0x0000);
  EXPECT_EQ(bf16(-0.0f), 0x8000);
  // bf16 keeps 7 mantissa bits: at 1 the spacing is 2^-7, half of it 2^-8.
  EXPECT_EQ(bf16(1.0f + 0x1p-8f), 0x3f80);             // tie, 0x3f80 is even: down
  EXPECT_EQ(bf16(1.0f + 3 * 0x1p-8f), 0x3f82);         // tie between 0x3f81 and 0x3f82: up
  EXPECT_EQ(bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);  // above the tie
  EXPECT_EQ(bf16(1.0f + 0x1p-8f - 0x1p-20f), 0x3f80);  // below the tie
  EXPECT_EQ(bf16(-(1.0f + 3 * 0x1p-8f)), 0xbf82);
}

TEST(Bf16, SubnormalsInfinitiesAndNaN) {
  EXPECT_EQ(bf16(from_bits(0x00010000)), 0x0001);  // smallest bf16 subnormal, exact
  EXPECT_EQ(bf16(from_bits(0x00008000)), 0x0000);  // half of it: tie to even (0)
  EXPECT_EQ(bf16(from_bits(0x00018000)), 0x0002);  // 1.5 of it: tie to even (2)
  EXPECT_EQ(bf16(from_bits(0x00017fff)), 0x0001);
  EXPECT_EQ(bf16(from_bits(0x007fffff)), 0x0080);  // largest f32 subnormal rounds to a normal
  EXPECT_EQ(bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(bf16(std::numeric_limits<float>::max()), 0x7f80);  // past the largest: infinity
  EXPECT_EQ(bf16(from_bits(0x7f7f7fff)), 0x7f7f);              // just under the tie: largest
  // NaN stays NaN, even one whose payload is only in the bits that are dropped.
  for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0xffc00000u, 0x7fffffffu}) {
    const uint16_t b = bf16(from_bits(nan));
    EXPECT_EQ(b & 0x7f80, 0x7f80) << std::hex << nan;
    EXPECT_NE(b & 0x007f, 0) << std::hex << nan << " became infinity";
    EXPECT_TRUE(std::isnan(bf16_to_f32(bf16_t{b})));
  }
}

TEST(Bf16, EveryPatternRoundTrips) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float f = bf16_to_f32(bf16_t{static_cast<uint16_t>(b)});
    EXPECT_EQ(to_bits(f), b << 16);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f))));
    } else {
      ASSERT_EQ(bf16(f), b) << std::hex << b;
    }
  }
}

// Nearest of the two bf16 values around f, ties to the even one, decided on exact differences
// in double; a value past the largest finite one compares against 2^128 (IEEE overflow).
uint16_t bf16_reference(float f) {
  const uint32_t u = to_bits(f);
  const uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;  // toward and away from zero
  const double x = std::fabs(static_cast<double>(f));
  const double vlo = std::fabs(static_cast<double>(from_bits(lo)));
  const double vhi =
      (hi & 0x7f800000u) == 0x7f800000u ? 0x1p128 : std::fabs(static_cast<double>(from_bits(hi)));
  const double dlo = x - vlo, dhi = vhi - x;
  if (dlo < dhi) return static_cast<uint16_t>(lo >> 16);
  if (dhi < dlo) return static_cast<uint16_t>(hi >> 16);
  return static_cast<uint16_t>(((lo >> 16) & 1) ? hi >> 16 : lo >> 16);
}

TEST(Bf16, MatchesAnIndependentRoundingOverASweep) {
  size_t checked = 0;
  for (uint64_t u = 0; u <= 0xffffffffull; u += 4099) {
    const float f = from_bits(static_cast<uint32_t>(u));
    if (std::isnan(f) || std::isinf(f)) continue;
    ASSERT_EQ(bf16(f), bf16_reference(f)) << "bits 0x" << std::hex << u;
    ++checked;
  }
  EXPECT_GT(checked, 1000000u);
}

TEST(F16, RoundsToNearestEven) {
  EXPECT_EQ(f16(1.0f), 0x3c00);
  EXPECT_EQ(f16(-2.0f), 0xc000);
  EXPECT_EQ(f16(-0.0f), 0x8000);
  EXPECT_EQ(f16(1.0f + 0x1p-11f), 0x3c00);      // tie: to even (down)
  EXPECT_EQ(f16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie: to even (up)
  EXPECT_EQ(f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
  EXPECT_EQ(f16(65504.0f), 0x7bff);  // largest half
  EXPECT_EQ(f16(65519.0f), 0x7bff);  // under the tie with 65536
  EXPECT_EQ(f16(65520.0f), 0x7c00);  // the tie rounds to even: infinity
  EXPECT_EQ(f16(1e6f), 0x7c00);
  EXPECT_EQ(f16(-1e6f), 0xfc00);
}

TEST(F16, SubnormalsInfinitiesAndNaN) {
  EXPECT_EQ(f16(0x1p-24f), 0x0001);             // smallest subnormal
  EXPECT_EQ(f16(0x1p-25f), 0x0000);             // half of it: tie to even (0)
  EXPECT_EQ(f16(1.5f * 0x1p-25f), 0x0001);      // above the tie
  EXPECT_EQ(f16(3 * 0x1p-25f), 0x0002);         // 1.5 of it: tie to even (2)
  EXPECT_EQ(f16(1023 * 0x1p-24f), 0x03ff);      // largest subnormal
  EXPECT_EQ(f16(1023.75f * 0x1p-24f), 0x0400);  // rounds up into the smallest normal
  EXPECT_EQ(f16(0x1p-14f), 0x0400);
  EXPECT_EQ(f16(-0x1p-24f), 0x8001);
  EXPECT_EQ(f16(0x1p-30f), 0x0000);
  EXPECT_EQ(f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(f16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(f16_to_f32(f16_t{0x0001}), 0x1p-24f);
  EXPECT_EQ(f16_to_f32(f16_t{0x03ff}), 1023 * 0x1p-24f);
  EXPECT_TRUE(std::isinf(f16_to_f32(f16_t{0x7c00})));
  for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0xffc00000u}) {
    EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(from_bits(nan))))) << std::hex << nan;
  }
}

TEST(F16, EveryPatternRoundTrips) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float f = f16_to_f32(f16_t{static_cast<uint16_t>(b)});
    if (std::isnan(f)) {
      ASSERT_EQ(b & 0x7c00, 0x7c00u);
      ASSERT_NE(b & 0x03ff, 0u);
      continue;
    }
    ASSERT_EQ(f16(f), b) << std::hex << b;
  }
}

#if defined(__FLT16_MAX__)
// The compiler's own _Float16 conversions (IEEE round to nearest even) as the reference.
TEST(F16, MatchesTheCompilersFloat16) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    const float want = static_cast<float>(h);
    const float got = f16_to_f32(f16_t{bits});
    if (std::isnan(want))
      ASSERT_TRUE(std::isnan(got));
    else
      ASSERT_EQ(to_bits(got), to_bits(want)) << std::hex << b;
  }
  for (uint64_t u = 0; u <= 0xffffffffull; u += 4099) {
    const float f = from_bits(static_cast<uint32_t>(u));
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(f16(f), want) << "bits 0x" << std::hex << u;
  }
}
#endif

TEST(DType, NamesSizesAndParsing) {
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::f64), 8u);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::f16), 2u);
  EXPECT_EQ(dtype_size(DType::i32), 4u);
  EXPECT_EQ(dtype_size(DType::u8), 1u);
  EXPECT_EQ(parse_dtype("bfloat16"), DType::bf16);
  EXPECT_EQ(parse_dtype("fp16"), DType::f16);
  EXPECT_EQ(parse_dtype("float32"), DType::f32);
  EXPECT_STREQ(dtype_name(DType::f64), "f64");
  EXPECT_TRUE(is_float(DType::bf16));
  EXPECT_FALSE(is_float(DType::i32));
  try {
    parse_dtype("f8");
    FAIL() << "f8 parsed";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("unknown dtype 'f8': expected one of f32, f64, bf16, f16"),
              std::string::npos)
        << e.message();
  }
}

}  // namespace
}  // namespace kiln::test
