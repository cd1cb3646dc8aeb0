// Manifest serialisation and verification of a checkpoint directory against it.
#include "core/checkpoint/manifest.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/checkpoint/layout.h"
#include "core/error.h"
#include "core/hash.h"

namespace kiln {

namespace fs = std::filesystem;

std::string manifest_to_json(const Manifest& m) {
  nlohmann::ordered_json j;
  j["format"] = m.format;
  j["step"] = m.step;
  j["world"] = m.world;
  j["kiln_version"] = m.kiln_version;
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const ManifestEntry& e : m.files) {
    files.push_back({{"file", e.file}, {"size", e.digest.size}, {"xxh3", hash_hex(e.digest.xxh3)}});
  }
  j["files"] = files;
  return j.dump(2) + "\n";
}

Manifest parse_manifest(const std::string& text, const std::string& origin) {
  Manifest m;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    m.format = j.at("format").get<std::string>();
    KILN_CHECK(m.format == "kiln-checkpoint/1",
               "{}: format '{}' is not one this Kiln reads "
               "(kiln-checkpoint/1)",
               origin, m.format);
    m.step = j.at("step").get<int64_t>();
    m.world = j.at("world").get<int>();
    m.kiln_version = j.value("kiln_version", "");
    for (const auto& f : j.at("files")) {
      ManifestEntry e;
      e.file = f.at("file").get<std::string>();
      e.digest.size = f.at("size").get<uint64_t>();
      const std::string hex = f.at("xxh3").get<std::string>();
      KILN_CHECK(hex.size() == 16, "{}: checksum '{}' of {} is not 16 hex digits", origin, hex,
                 e.file);
      e.digest.xxh3 = std::stoull(hex, nullptr, 16);
      m.files.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("{}: not a valid manifest ({})", origin, e.what());
  } catch (const std::invalid_argument&) {
    KILN_FAIL("{}: a checksum is not hexadecimal", origin);
  }
  return m;
}

Manifest read_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kManifestFile).string();
  return parse_manifest(read_file(path), path);
}

VerifyReport verify_checkpoint(const std::string& dir, bool checksums) {
  VerifyReport r;
  const std::string mpath = (fs::path(dir) / kManifestFile).string();
  if (!fs::exists(mpath)) {
    r.problems.push_back(
        fmt::format("{}: missing (the checkpoint was never committed, or its "
                    "deletion was interrupted)",
                    kManifestFile));
    return r;
  }
  try {
    r.manifest = read_manifest(dir);
  } catch (const Error& e) {
    r.problems.push_back(fmt::format("{}: {}", kManifestFile, e.message()));
    return r;
  }
  std::set<std::string> listed;
  for (const ManifestEntry& e : r.manifest.files) listed.insert(e.file);
  std::vector<std::string> required = {kModelFile, kTrainerFile};
  for (int i = 0; i < r.manifest.world; ++i) {
    required.push_back(optim_shard_name(i, r.manifest.world));
  }
  for (const std::string& f : required) {
    if (!listed.count(f)) {
      r.problems.push_back(fmt::format("{}: not listed in {} (a checkpoint of {} ranks needs it)",
                                       f, kManifestFile, r.manifest.world));
    }
  }
  for (const ManifestEntry& e : r.manifest.files) {
    const std::string path = (fs::path(dir) / e.file).string();
    std::error_code ec;
    const uint64_t size = fs::file_size(path, ec);
    if (ec) {
      r.problems.push_back(fmt::format("{}: missing ({})", e.file, ec.message()));
      continue;
    }
    if (size != e.digest.size) {
      r.problems.push_back(
          fmt::format("{}: size {} bytes, the manifest says {}", e.file, size, e.digest.size));
      continue;
    }
    if (!checksums) continue;
    try {
      const FileDigest d = digest_file(path);
      r.bytes_checked += d.size;
      if (d.size != e.digest.size || d.xxh3 != e.digest.xxh3) {
        r.problems.push_back(
            fmt::format("{}: checksum mismatch (xxh3 {} on disk, {} in the "
                        "manifest): the file is corrupted",
                        e.file, hash_hex(d.xxh3), hash_hex(e.digest.xxh3)));
      }
    } catch (const Error& err) {
      r.problems.push_back(fmt::format("{}: {}", e.file, err.message()));
    }
  }
  return r;
}

}  // namespace kiln
