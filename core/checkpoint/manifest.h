// MANIFEST.json, the commit marker of a checkpoint (DESIGN decision 8): written last, it lists
// every file of the checkpoint with its size and xxHash3 checksum. A checkpoint directory is
// loadable only when its manifest exists and every file matches it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/checkpoint/durable_file.h"

namespace kiln {

struct ManifestEntry {
  std::string file;  // name inside the checkpoint directory
  FileDigest digest;
};

struct Manifest {
  std::string format = "kiln-checkpoint/1";
  int64_t step = 0;
  int world = 1;  // ranks that wrote it (= optimizer shards)
  std::string kiln_version;
  std::vector<ManifestEntry> files;
};

std::string manifest_to_json(const Manifest& m);
// Parses a manifest; `origin` names it in errors.
Manifest parse_manifest(const std::string& text, const std::string& origin);
Manifest read_manifest(const std::string& dir);

// The outcome of checking a checkpoint directory; each problem names the file and says what is
// wrong with it (missing, size, checksum).
struct VerifyReport {
  bool ok() const { return problems.empty(); }
  std::vector<std::string> problems;
  Manifest manifest;  // valid when the manifest itself could be read
  uint64_t bytes_checked = 0;
};
// Checks that the manifest lists the files a checkpoint needs and that each file has the listed
// size and (when `checksums`) checksum.
VerifyReport verify_checkpoint(const std::string& dir, bool checksums = true);

}  // namespace kiln
