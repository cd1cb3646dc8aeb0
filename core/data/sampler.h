// The global sample order (DESIGN decision 6). Training reads an endless stream made of one
// permutation of the dataset per epoch, keyed by (seed, epoch): stream position p is sample
// perm(p / n)[p % n]. A step consumes global_batch consecutive positions starting at the cursor;
// how they are split across ranks and micro-batches does not change which samples a step sees,
// so a run resumed at another world size goes on over the same samples. The cursor (samples
// consumed) is the whole state to save.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln {

class GlobalSampler {
 public:
  GlobalSampler(int64_t dataset_size, uint64_t seed);

  // out[i] = sample at stream position `position + i`, for i < count.
  void indices(int64_t position, int64_t count, int64_t* out);
  int64_t dataset_size() const { return n_; }
  int64_t epoch_of(int64_t position) const { return position / n_; }
  // The permutation of one epoch (exposed for tests).
  const std::vector<int64_t>& permutation(int64_t epoch);

 private:
  int64_t n_;
  uint64_t seed_;
  // The two most recent epochs: a batch may straddle an epoch boundary.
  int64_t cached_epoch_[2] = {-1, -1};
  std::vector<int64_t> cached_[2];
  int next_slot_ = 0;
};

// Which stream positions one rank reads in one step: micro-batch m of rank r covers
// [cursor + (r * accum + m) * micro, ... + micro).
inline int64_t micro_batch_position(int64_t cursor, int rank, int64_t accum, int64_t m,
                                    int64_t micro) {
  return cursor + (static_cast<int64_t>(rank) * accum + m) * micro;
}

}  // namespace kiln
