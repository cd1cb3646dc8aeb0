// Per-epoch permutations by Fisher-Yates over a counter-based generator keyed by (seed, epoch).
#include "core/data/sampler.h"

#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace kiln {

GlobalSampler::GlobalSampler(int64_t dataset_size, uint64_t seed) : n_(dataset_size), seed_(seed) {
  KILN_CHECK(n_ > 0, "the dataset is empty: nothing to sample");
}

const std::vector<int64_t>& GlobalSampler::permutation(int64_t epoch) {
  for (int s = 0; s < 2; ++s) {
    if (cached_epoch_[s] == epoch) return cached_[s];
  }
  int slot = next_slot_;
  next_slot_ ^= 1;
  std::vector<int64_t>& p = cached_[slot];
  p.resize(static_cast<size_t>(n_));
  std::iota(p.begin(), p.end(), int64_t{0});
  Rng rng(seed_, 0x5eed0000ull + static_cast<uint64_t>(epoch));
  for (int64_t i = n_ - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
    std::swap(p[i], p[j]);
  }
  cached_epoch_[slot] = epoch;
  return p;
}

void GlobalSampler::indices(int64_t position, int64_t count, int64_t* out) {
  KILN_CHECK(position >= 0 && count >= 0, "sampler position {} count {}", position, count);
  int64_t i = 0;
  while (i < count) {
    const int64_t pos = position + i;
    const std::vector<int64_t>& p = permutation(pos / n_);
    const int64_t start = pos % n_;
    const int64_t take = std::min(count - i, n_ - start);
    std::copy(p.begin() + start, p.begin() + start + take, out + i);
    i += take;
  }
}

}  // namespace kiln
