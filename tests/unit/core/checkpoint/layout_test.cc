// Checkpoint directory layout, manifest verification (a flipped byte, a changed size, a missing
// file are each reported naming the file), choosing the newest checkpoint that verifies,
// retention, and cleaning up what a crash leaves.
#include "core/checkpoint/layout.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/checkpoint/durable_file.h"
#include "core/checkpoint/manifest.h"
#include "unit/test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// A committed checkpoint of `step` with fake contents (the layout does not look inside files).
std::string make_checkpoint(const std::string& root, int64_t step, bool commit = true) {
  const std::string dir = root + "/" + step_dir_name(step);
  fs::create_directories(dir);
  Manifest m;
  m.step = step;
  m.world = 2;
  for (const std::string& f : {std::string(kModelFile), std::string(kTrainerFile),
                               optim_shard_name(0, 2), optim_shard_name(1, 2)}) {
    const std::string text = f + " of step " + std::to_string(step) + std::string(100, 'x');
    m.files.push_back(ManifestEntry{f, write_file_durable(dir + "/" + f, text)});
  }
  if (commit) write_file_durable(dir + "/" + kManifestFile, manifest_to_json(m));
  return dir;
}

void flip_byte(const std::string& path, long offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x01));
}

bool mentions(const VerifyReport& r, const std::string& file, const std::string& what) {
  for (const std::string& p : r.problems) {
    if (p.rfind(file + ":", 0) == 0 && p.find(what) != std::string::npos) return true;
  }
  return false;
}

TEST(CheckpointLayout, Names) {
  EXPECT_EQ(step_dir_name(1000), "step-00001000");
  EXPECT_EQ(optim_shard_name(1, 4), "optim-00001-of-00004.safetensors");
  EXPECT_EQ(parse_step_dir("step-00001000"), 1000);
  EXPECT_EQ(parse_step_dir("step-123456789"), 123456789);
  EXPECT_EQ(parse_step_dir("step-00001000.tmp"), -1);
  EXPECT_EQ(parse_step_dir("step-"), -1);
  EXPECT_EQ(parse_step_dir("latest"), -1);
  EXPECT_EQ(dir_basename("runs/x/step-00000010/"), "step-00000010");
  EXPECT_EQ(dir_basename("step-00000010"), "step-00000010");
}

TEST(CheckpointLayout, VerifyNamesTheBadFile) {
  test::TempDir root;
  const std::string dir = make_checkpoint(root.path(), 20);
  EXPECT_TRUE(verify_checkpoint(dir).ok());

  flip_byte(dir + "/" + optim_shard_name(1, 2), 10);
  VerifyReport r = verify_checkpoint(dir);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_TRUE(mentions(r, optim_shard_name(1, 2), "checksum mismatch")) << r.problems[0];
  // Sizes alone do not see a flipped byte; checksums do.
  EXPECT_TRUE(verify_checkpoint(dir, /*checksums=*/false).ok());

  std::ofstream(dir + "/" + kTrainerFile, std::ios::app) << "more";
  r = verify_checkpoint(dir);
  EXPECT_TRUE(mentions(r, kTrainerFile, "size")) << r.problems[0];

  fs::remove(dir + "/" + kModelFile);
  r = verify_checkpoint(dir);
  EXPECT_TRUE(mentions(r, kModelFile, "missing"));
  EXPECT_EQ(r.problems.size(), 3u);

  fs::remove(dir + "/" + kManifestFile);
  r = verify_checkpoint(dir);
  EXPECT_TRUE(mentions(r, kManifestFile, "missing"));
}

TEST(CheckpointLayout, ManifestMustListEveryShard) {
  test::TempDir root;
  const std::string dir = make_checkpoint(root.path(), 5);
  Manifest m = read_manifest(dir);
  m.files.pop_back();  // drop optim-00001-of-00002
  write_file_durable(dir + "/" + kManifestFile, manifest_to_json(m));
  const VerifyReport r = verify_checkpoint(dir);
  EXPECT_TRUE(mentions(r, optim_shard_name(1, 2), "not listed"));
}

TEST(CheckpointLayout, NewestValidSkipsCorruptAndUncommitted) {
  test::TempDir root;
  make_checkpoint(root.path(), 10);
  make_checkpoint(root.path(), 20);
  const std::string d30 = make_checkpoint(root.path(), 30);
  make_checkpoint(root.path(), 40, /*commit=*/false);
  fs::create_directories(root.path() + "/step-00000050.tmp");
  flip_byte(d30 + "/" + kModelFile, 3);

  std::vector<std::string> skipped;
  std::optional<CheckpointDir> c = newest_valid_checkpoint(root.path(), &skipped);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->step, 20);
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_NE(skipped[0].find("step-00000040: MANIFEST.json: missing"), std::string::npos)
      << skipped[0];
  EXPECT_NE(skipped[1].find("step-00000030: model.safetensors: checksum mismatch"),
            std::string::npos)
      << skipped[1];

  const std::vector<std::string> removed = remove_incomplete(root.path());
  EXPECT_EQ(removed.size(), 2u);
  EXPECT_FALSE(fs::exists(root.path() + "/step-00000050.tmp"));
  EXPECT_FALSE(fs::exists(root.path() + "/step-00000040"));
  EXPECT_TRUE(fs::exists(d30));  // committed (if corrupt): left for a person to look at
  EXPECT_EQ(list_checkpoints(root.path()).size(), 3u);
}

TEST(CheckpointLayout, RetentionKeepsLastAndMultiples) {
  using V = std::vector<int64_t>;
  EXPECT_EQ(retention_victims({10, 20, 30, 40, 50}, 2, 0), (V{10, 20, 30}));
  EXPECT_EQ(retention_victims({10, 20, 30, 40, 50}, 2, 20), (V{10, 30}));
  EXPECT_EQ(retention_victims({50, 10, 40}, 1, 0), (V{10, 40}));
  EXPECT_EQ(retention_victims({10, 20}, 0, 0), V{});
  EXPECT_EQ(retention_victims({10, 20}, 5, 0), V{});
}

TEST(CheckpointLayout, RemoveCheckpointLeavesNothing) {
  test::TempDir root;
  const std::string dir = make_checkpoint(root.path(), 7);
  remove_checkpoint(dir);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(list_checkpoints(root.path()).empty());
}

TEST(DurableFile, ReplacingADirectorySwapsIt) {
  test::TempDir root;
  const std::string a = root.path() + "/a", b = root.path() + "/b";
  fs::create_directories(a);
  write_file_durable(a + "/x", "new");
  EXPECT_FALSE(rename_dir_replacing(a, b));
  EXPECT_EQ(read_file(b + "/x"), "new");
  fs::create_directories(a);
  write_file_durable(a + "/x", "newer");
  EXPECT_TRUE(rename_dir_replacing(a, b));
  EXPECT_EQ(read_file(b + "/x"), "newer");
  EXPECT_EQ(read_file(a + "/x"), "new");  // the old one, for the caller to remove
}

TEST(DurableFile, DigestMatchesWhatWasWritten) {
  test::TempDir root;
  std::string big(20u << 20, 'a');  // spans several write chunks
  big[12345678] = 'b';
  const FileDigest w = write_file_durable(root.path() + "/f", big);
  const FileDigest r = digest_file(root.path() + "/f");
  EXPECT_EQ(w.size, big.size());
  EXPECT_EQ(w.size, r.size);
  EXPECT_EQ(w.xxh3, r.xxh3);
  big[12345678] = 'a';
  EXPECT_NE(write_file_durable(root.path() + "/g", big).xxh3, r.xxh3);
}

}  // namespace
}  // namespace kiln
