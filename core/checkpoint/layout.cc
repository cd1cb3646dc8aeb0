// Checkpoint directory names, listing, selection, retention and removal.
#include "core/checkpoint/layout.h"

#include <algorithm>
#include <filesystem>

#include "core/checkpoint/durable_file.h"
#include "core/checkpoint/manifest.h"
#include "core/error.h"
#include "core/log.h"

namespace kiln {

namespace fs = std::filesystem;

std::string step_dir_name(int64_t step) { return fmt::format("step-{:08d}", step); }

std::string optim_shard_name(int rank, int world) {
  return fmt::format("optim-{:05d}-of-{:05d}.safetensors", rank, world);
}

std::string rank_digest_name(int rank) { return fmt::format("rank-{:05d}.digest.json", rank); }

std::string dir_basename(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

int64_t parse_step_dir(const std::string& name) {
  constexpr std::string_view kPrefix = "step-";
  if (name.size() <= kPrefix.size() || name.compare(0, kPrefix.size(), kPrefix) != 0) return -1;
  int64_t step = 0;
  for (size_t i = kPrefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || step > (int64_t{1} << 58)) return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

std::vector<CheckpointDir> list_checkpoints(const std::string& root) {
  std::vector<CheckpointDir> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const fs::directory_entry& e : fs::directory_iterator(root)) {
    if (!e.is_directory()) continue;
    const int64_t step = parse_step_dir(e.path().filename().string());
    if (step < 0) continue;
    out.push_back(CheckpointDir{step, e.path().string(), fs::exists(e.path() / kManifestFile, ec)});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

std::optional<CheckpointDir> newest_valid_checkpoint(const std::string& root,
                                                     std::vector<std::string>* skipped) {
  std::vector<CheckpointDir> all = list_checkpoints(root);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const std::string name = fs::path(it->path).filename().string();
    VerifyReport r = verify_checkpoint(it->path);
    if (r.ok()) return *it;
    if (skipped) {
      std::string why;
      for (const std::string& p : r.problems) why += (why.empty() ? "" : "; ") + p;
      skipped->push_back(fmt::format("{}: {}", name, why));
    }
  }
  return std::nullopt;
}

void remove_checkpoint(const std::string& path) {
  const fs::path dir(path);
  std::error_code ec;
  if (fs::remove(dir / kManifestFile, ec)) fsync_dir(path);
  fs::remove_all(dir, ec);
  KILN_CHECK(!ec, "cannot remove checkpoint {}: {}", path, ec.message());
}

std::vector<std::string> remove_incomplete(const std::string& root) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return removed;
  for (const fs::directory_entry& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.rfind("step-", 0) != 0) continue;
    const bool tmp = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0;
    if (tmp || (parse_step_dir(name) >= 0 && !fs::exists(e.path() / kManifestFile, ec))) {
      fs::remove_all(e.path(), ec);
      KILN_CHECK(!ec, "cannot remove the incomplete checkpoint {}: {}", e.path().string(),
                 ec.message());
      removed.push_back(name);
    }
  }
  if (!removed.empty()) fsync_dir(root);
  return removed;
}

std::vector<int64_t> retention_victims(const std::vector<int64_t>& steps, int64_t keep_last,
                                       int64_t keep_every) {
  std::vector<int64_t> sorted = steps;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> out;
  if (keep_last <= 0) return out;
  const int64_t n = static_cast<int64_t>(sorted.size());
  for (int64_t i = 0; i + keep_last < n; ++i) {
    if (keep_every > 0 && sorted[i] % keep_every == 0) continue;
    out.push_back(sorted[i]);
  }
  return out;
}

}  // namespace kiln
