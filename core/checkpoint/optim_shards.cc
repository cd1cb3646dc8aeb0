// Writing optimizer-state shards and gathering any range back from them.
#include "core/checkpoint/optim_shards.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>

#include "core/checkpoint/layout.h"
#include "core/error.h"

namespace kiln {

namespace {

int64_t meta_int(const SafeTensorFile& f, const std::string& key) {
  const std::string& v = f.meta(key);
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  KILN_FAIL("{}: metadata {} = '{}' is not an integer", f.path(), key, v);
}

}  // namespace

FlatRange shard_range(int64_t total, int rank, int world) {
  KILN_CHECK(world > 0 && rank >= 0 && rank < world, "shard of rank {} in a world of {}", rank,
             world);
  return FlatRange{total * rank / world, total * (rank + 1) / world};
}

std::vector<SafeTensor> optim_shard_tensors(const OptimShardInfo& info,
                                            const std::vector<StateSlice>& states) {
  std::vector<SafeTensor> tensors;
  for (const StateSlice& s : states) {
    tensors.push_back(SafeTensor{s.name, DType::f32, Shape{info.range.size()}, s.data});
  }
  return tensors;
}

std::map<std::string, std::string> optim_shard_metadata(const OptimShardInfo& info) {
  return {
      {"kiln.kind", "optimizer_shard"},
      {"optimizer", info.optimizer},
      {"begin", std::to_string(info.range.begin)},
      {"end", std::to_string(info.range.end)},
      {"total", std::to_string(info.total)},
      {"rank", std::to_string(info.rank)},
      {"world", std::to_string(info.world)},
      {"model_fingerprint", info.model_fingerprint},
  };
}

FileDigest write_optim_shard(const std::string& path, const OptimShardInfo& info,
                             const std::vector<StateSlice>& states) {
  return write_safetensors_digest(path, optim_shard_tensors(info, states),
                                  optim_shard_metadata(info));
}

OptimShardSet OptimShardSet::open(const std::string& dir, int world) {
  KILN_CHECK(world >= 1, "{}: a checkpoint of {} optimizer shards", dir, world);
  OptimShardSet set;
  for (int r = 0; r < world; ++r) {
    const std::string path = (std::filesystem::path(dir) / optim_shard_name(r, world)).string();
    // Headers only: a rank reads just the bytes of the range it asks for (read_range).
    SafeTensorFile f = read_safetensors_header(path);
    KILN_CHECK(f.meta("kiln.kind") == "optimizer_shard", "{} is not an optimizer shard", path);
    OptimShardInfo info;
    info.optimizer = f.meta("optimizer");
    info.range = FlatRange{meta_int(f, "begin"), meta_int(f, "end")};
    info.total = meta_int(f, "total");
    info.rank = static_cast<int>(meta_int(f, "rank"));
    info.world = static_cast<int>(meta_int(f, "world"));
    info.model_fingerprint = f.meta("model_fingerprint");
    KILN_CHECK(info.rank == r && info.world == world,
               "{} says it is shard {} of {}; its name says {} of {}", path, info.rank, info.world,
               r, world);
    KILN_CHECK(
        0 <= info.range.begin && info.range.begin <= info.range.end && info.range.end <= info.total,
        "{}: range [{}, {}) does not lie within the {} elements of the state", path,
        info.range.begin, info.range.end, info.total);
    for (const SafeTensorFile::Entry& e : f.entries()) {
      KILN_CHECK(e.dtype == DType::f32 && e.shape == Shape{info.range.size()},
                 "{}: state '{}' is {} {}, expected F32 ({}) for range [{}, {})", path, e.name,
                 safetensors_dtype_name(e.dtype), e.shape.str(), info.range.size(),
                 info.range.begin, info.range.end);
    }
    if (!set.shards_.empty()) {
      const auto& [first, ff] = set.shards_.front();
      KILN_CHECK(info.total == first.total && info.optimizer == first.optimizer &&
                     info.model_fingerprint == first.model_fingerprint && f.names() == ff.names(),
                 "{} disagrees with {} (optimizer {} vs {}, total {} vs {}, states [{}] vs [{}]): "
                 "the shards are not from one checkpoint",
                 path, ff.path(), info.optimizer, first.optimizer, info.total, first.total,
                 fmt::join(f.names(), ", "), fmt::join(ff.names(), ", "));
    }
    set.shards_.emplace_back(std::move(info), std::move(f));
  }
  std::sort(set.shards_.begin(), set.shards_.end(),
            [](const auto& a, const auto& b) { return a.first.range.begin < b.first.range.begin; });
  int64_t expect = 0;
  for (const auto& [info, f] : set.shards_) {
    KILN_CHECK(info.range.begin == expect,
               "{}: covers [{}, {}) but the shards before it end at "
               "{}: {} in the optimizer state",
               f.path(), info.range.begin, info.range.end, expect,
               info.range.begin > expect ? "a gap" : "an overlap");
    expect = info.range.end;
  }
  KILN_CHECK(expect == set.total(), "{}: the {} optimizer shards cover [0, {}) of {} elements", dir,
             world, expect, set.total());
  return set;
}

void OptimShardSet::read_range(const std::string& name, FlatRange range, float* out) const {
  KILN_CHECK(0 <= range.begin && range.begin <= range.end && range.end <= total(),
             "optimizer state range [{}, {}) lies outside the checkpoint's {} elements",
             range.begin, range.end, total());
  for (const auto& [info, f] : shards_) {
    const int64_t lo = std::max(range.begin, info.range.begin);
    const int64_t hi = std::min(range.end, info.range.end);
    if (lo >= hi) continue;
    f.read_bytes(name, static_cast<uint64_t>(lo - info.range.begin) * sizeof(float),
                 static_cast<uint64_t>(hi - lo) * sizeof(float), out + (lo - range.begin));
  }
}

}  // namespace kiln
