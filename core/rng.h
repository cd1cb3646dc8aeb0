// Counter-based random numbers (Philox4x32-10): a draw is a pure function of (key, counter), so
// a value can be recomputed anywhere — on any rank, on the CPU or a GPU — from the indices that
// name it. Also a small sequential generator for shuffles and initialisation built on it.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define KILN_HD __host__ __device__ __forceinline__
#else
#define KILN_HD inline
#endif

namespace kiln {

struct Philox4 {
  uint32_t v[4];
};

KILN_HD Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                           uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int i = 0; i < 10; ++i) {
    uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Uniform in [0, 1) with 24 random bits.
KILN_HD float uniform_from_bits(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

// Sequential generator: each (seed, stream) pair is an independent sequence.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}

  uint32_t next_u32() {
    if (have_ == 0) {
      Philox4 r = philox4x32(static_cast<uint32_t>(counter_), static_cast<uint32_t>(counter_ >> 32),
                             static_cast<uint32_t>(stream_), static_cast<uint32_t>(stream_ >> 32),
                             static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32));
      for (int i = 0; i < 4; ++i) buf_[i] = r.v[i];
      have_ = 4;
      ++counter_;
    }
    return buf_[4 - have_--];
  }
  uint64_t next_u64() {
    uint64_t hi = next_u32();
    return hi << 32 | next_u32();
  }
  // Uniform integer in [0, n), without modulo bias.
  uint64_t below(uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
      x = next_u64();
    } while (x >= limit);
    return x % n;
  }
  double uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t seed_, stream_;
  uint64_t counter_ = 0;
  uint32_t buf_[4] = {0, 0, 0, 0};
  int have_ = 0;
};

}  // namespace kiln
