// Where a checkpoint's files live (DESIGN decision 8): <dir>/step-00001000/{model.safetensors,
// optim-00000-of-00004.safetensors, trainer.json, MANIFEST.json}, written first under
// step-00001000.tmp/. Also listing a checkpoint directory, choosing the newest checkpoint that
// verifies, retention, and removal (the commit marker first, so that a removal cut short leaves
// a directory that is never loaded).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

inline constexpr const char* kManifestFile = "MANIFEST.json";
inline constexpr const char* kModelFile = "model.safetensors";
inline constexpr const char* kTrainerFile = "trainer.json";

std::string step_dir_name(int64_t step);            // "step-00001000"
std::string optim_shard_name(int rank, int world);  // "optim-00001-of-00004.safetensors"
std::string rank_digest_name(int rank);             // "rank-00001.digest.json" (transient)
// The last component of a directory path, trailing slashes ignored ("a/step-00000010/" ->
// "step-00000010").
std::string dir_basename(const std::string& path);
// The step of a committed-layout name ("step-00001000" -> 1000), or -1 for anything else
// (".tmp" directories included).
int64_t parse_step_dir(const std::string& name);

struct CheckpointDir {
  int64_t step = 0;
  std::string path;
  bool committed = false;  // has its manifest (not yet verified)
};
// The step directories under `root` (not the .tmp ones), oldest first. Empty when `root` does
// not exist.
std::vector<CheckpointDir> list_checkpoints(const std::string& root);

// The newest committed checkpoint under `root` whose manifest verifies (sizes and checksums).
// Each one skipped is described in `skipped` ("step-00000020: model.safetensors: checksum
// mismatch ...").
std::optional<CheckpointDir> newest_valid_checkpoint(const std::string& root,
                                                     std::vector<std::string>* skipped);

// Removes a checkpoint directory: its manifest first (fsynced), then the other files.
void remove_checkpoint(const std::string& path);
// Removes what a crash can leave behind: .tmp directories and step directories without a
// manifest. Returns the names removed.
std::vector<std::string> remove_incomplete(const std::string& root);

// Which committed steps retention deletes: all but the newest `keep_last` (0 = keep all), except
// those that are multiples of `keep_every` (0 = none kept for that reason).
std::vector<int64_t> retention_victims(const std::vector<int64_t>& steps, int64_t keep_last,
                                       int64_t keep_every);

}  // namespace kiln
