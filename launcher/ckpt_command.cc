// `kiln ckpt ls|verify|export`: inspect checkpoint directories, check every checksum, and write
// a checkpoint's weights as a standalone safetensors file.
#include <cstdio>
#include <filesystem>

#include "core/checkpoint/durable_file.h"
#include "core/checkpoint/layout.h"
#include "core/checkpoint/manifest.h"
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/trainer_state.h"
#include "core/error.h"
#include "launcher/commands.h"

namespace kiln {

namespace fs = std::filesystem;

namespace {

struct CkptFlags {
  std::string ls_dir, verify_path, export_path, out;
};

bool is_single_checkpoint(const std::string& path) {
  std::error_code ec;
  return fs::exists(fs::path(path) / kManifestFile, ec) || parse_step_dir(dir_basename(path)) >= 0;
}

int run_ls(const std::string& dir) {
  KILN_CHECK(fs::is_directory(dir), "kiln ckpt ls {}: no such directory", dir);
  std::vector<fs::path> entries;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && e.path().filename().string().rfind("step-", 0) == 0) {
      entries.push_back(e.path());
    }
  }
  std::sort(entries.begin(), entries.end());
  std::printf("%-22s %-34s %10s %6s  %-16s %s\n", "checkpoint", "state", "MB", "world",
              "config hash", "kiln");
  for (const fs::path& p : entries) {
    const std::string name = p.filename().string();
    if (parse_step_dir(name) < 0) {
      std::printf("%-22s %-34s\n", name.c_str(), "incomplete (a save in progress or cut off)");
      continue;
    }
    if (!fs::exists(p / kManifestFile)) {
      std::printf("%-22s %-34s\n", name.c_str(), "incomplete (no manifest: never loaded)");
      continue;
    }
    try {
      const Manifest m = read_manifest(p.string());
      uint64_t bytes = 0;
      for (const ManifestEntry& e : m.files) bytes += e.digest.size;
      const std::string tpath = (p / kTrainerFile).string();
      const TrainerState t = parse_trainer_state(read_file(tpath), tpath);
      std::printf("%-22s %-34s %10.2f %6d  %-16s %s\n", name.c_str(), "committed", bytes / 1e6,
                  m.world, t.config_hash.c_str(), m.kiln_version.c_str());
    } catch (const Error& e) {
      std::printf("%-22s unreadable: %s\n", name.c_str(), e.message().c_str());
    }
  }
  std::printf("(sizes from the manifests; `kiln ckpt verify %s` checks every checksum)\n",
              dir.c_str());
  return 0;
}

// Returns the number of checkpoints that failed.
int verify_one(const std::string& path) {
  const std::string name = dir_basename(path);
  const VerifyReport r = verify_checkpoint(path);
  if (r.ok()) {
    std::printf("%s: ok (%zu files, %.2f MB checked)\n", name.c_str(), r.manifest.files.size(),
                r.bytes_checked / 1e6);
    return 0;
  }
  std::printf("%s: FAILED\n", name.c_str());
  for (const std::string& p : r.problems) std::printf("  %s\n", p.c_str());
  return 1;
}

int run_verify(const std::string& path) {
  KILN_CHECK(fs::is_directory(path), "kiln ckpt verify {}: no such directory", path);
  if (is_single_checkpoint(path)) return verify_one(path) ? 1 : 0;
  int failed = 0, checked = 0;
  for (const CheckpointDir& c : list_checkpoints(path)) {
    if (!c.committed) {
      std::printf("%s: not committed (no manifest), never loaded\n",
                  fs::path(c.path).filename().string().c_str());
      continue;
    }
    ++checked;
    failed += verify_one(c.path);
  }
  std::printf("%d of %d checkpoint(s) verified\n", checked - failed, checked);
  return failed ? 1 : 0;
}

int run_export(const std::string& path, const std::string& out) {
  std::string dir = path;
  if (!is_single_checkpoint(path)) {
    std::vector<std::string> skipped;
    std::optional<CheckpointDir> c = newest_valid_checkpoint(path, &skipped);
    for (const std::string& s : skipped) std::fprintf(stderr, "skipping %s\n", s.c_str());
    KILN_CHECK(c.has_value(), "kiln ckpt export {}: no checkpoint there verifies", path);
    dir = c->path;
  } else {
    const VerifyReport r = verify_checkpoint(dir);
    KILN_CHECK(r.ok(), "kiln ckpt export {}: the checkpoint does not verify: {}", dir,
               r.problems.front());
  }
  const SafeTensorFile model = read_safetensors((fs::path(dir) / kModelFile).string());
  const std::string tpath = (fs::path(dir) / kTrainerFile).string();
  const TrainerState t = parse_trainer_state(read_file(tpath), tpath);
  std::vector<SafeTensor> tensors;
  int64_t params = 0;
  for (const SafeTensorFile::Entry& e : model.entries()) {
    tensors.push_back(SafeTensor{e.name, e.dtype, e.shape, model.data(e.name)});
    params += e.shape.numel();
  }
  std::map<std::string, std::string> meta = model.metadata();
  meta["step"] = std::to_string(t.step);
  meta["config_hash"] = t.config_hash;
  meta["config"] = t.config_json;
  meta["kiln_version"] = t.kiln_version;
  write_safetensors(out, tensors, meta);
  std::printf("exported %s (step %lld): %zu tensors, %lld parameters -> %s\n", dir.c_str(),
              static_cast<long long>(t.step), tensors.size(), static_cast<long long>(params),
              out.c_str());
  return 0;
}

}  // namespace

CommandRunner add_ckpt_command(CLI::App& app) {
  auto flags = std::make_shared<CkptFlags>();
  CLI::App* cmd = app.add_subcommand("ckpt", "Inspect, verify and export checkpoints");
  cmd->require_subcommand(1);
  CLI::App* ls = cmd->add_subcommand("ls", "List the checkpoints in a checkpoint directory");
  ls->add_option("dir", flags->ls_dir, "checkpoint.dir of a run")->required();
  CLI::App* verify = cmd->add_subcommand(
      "verify",
      "Check every file's size and checksum against its manifest (exit 1 on any "
      "mismatch)");
  verify->add_option("path", flags->verify_path, "a checkpoint (step-N) or a directory of them")
      ->required();
  CLI::App* exp = cmd->add_subcommand(
      "export", "Write a checkpoint's fp32 weights as one safetensors file (loads in PyTorch)");
  exp->add_option("path", flags->export_path,
                  "a checkpoint, or a directory of them (the newest that verifies)")
      ->required();
  exp->add_option("--out", flags->out, "output file")->required();
  return [flags, ls, verify, exp]() -> int {
    if (ls->parsed()) return run_ls(flags->ls_dir);
    if (verify->parsed()) return run_verify(flags->verify_path);
    if (exp->parsed()) return run_export(flags->export_path, flags->out);
    return 1;
  };
}

}  // namespace kiln
