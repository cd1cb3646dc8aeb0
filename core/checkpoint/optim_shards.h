// Optimizer-state shards: rank r of a world of W writes optim-r-of-W.safetensors holding its
// slice [begin, end) of every flat state buffer (exp_avg, exp_avg_sq, momentum), and records
// that slice's global offsets. A run at another world size (or with another partition, such as
// ZeRO's) re-slices: any range of the flat buffers is gathered from whichever shards overlap it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint/durable_file.h"
#include "core/checkpoint/safetensors.h"

namespace kiln {

// Elements [begin, end) of the flat buffers.
struct FlatRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};

// The slice rank r writes: an even split of `total` over `world`.
FlatRange shard_range(int64_t total, int rank, int world);

struct OptimShardInfo {
  std::string optimizer;  // "adamw", "sgd"
  FlatRange range;
  int64_t total = 0;  // elements of each flat state buffer (padding included)
  int rank = 0, world = 1;
  std::string model_fingerprint;  // the parameter layout the offsets refer to
};

// One named state buffer's slice: `data` points at element info.range.begin's value (host).
struct StateSlice {
  std::string name;
  const float* data;
};

// The tensors (each a [range.size()] F32 slice, from `states`) and metadata of a shard file.
std::vector<SafeTensor> optim_shard_tensors(const OptimShardInfo& info,
                                            const std::vector<StateSlice>& states);
std::map<std::string, std::string> optim_shard_metadata(const OptimShardInfo& info);
// Writes one shard file (fsynced) and returns its digest.
FileDigest write_optim_shard(const std::string& path, const OptimShardInfo& info,
                             const std::vector<StateSlice>& states);

// The shards of one checkpoint, checked to tile [0, total) exactly once. Only their headers are
// read up front; read_range reads the bytes of the range asked for, so ranks that each load
// their own slice read the checkpoint once between them, not once each.
class OptimShardSet {
 public:
  // Reads the headers of optim-*-of-`world` in `dir`; throws naming the file on a missing shard,
  // a gap, an overlap or disagreeing metadata.
  static OptimShardSet open(const std::string& dir, int world);

  const std::string& optimizer() const { return shards_.front().first.optimizer; }
  int64_t total() const { return shards_.front().first.total; }
  const std::string& model_fingerprint() const { return shards_.front().first.model_fingerprint; }
  int world() const { return static_cast<int>(shards_.size()); }
  std::vector<std::string> state_names() const { return shards_.front().second.names(); }

  // Reads state `name` over `range` from the shards that hold it into `out` (range.size()
  // floats). The files must not change after open().
  void read_range(const std::string& name, FlatRange range, float* out) const;

 private:
  std::vector<std::pair<OptimShardInfo, SafeTensorFile>> shards_;  // by range.begin
};

}  // namespace kiln
