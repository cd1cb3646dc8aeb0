// Checkpoints of a multi-rank job (run by ctest at 2 and 4 ranks): every rank's shard lands in
// one committed checkpoint whose manifest lists all of them; every rank restores parameters and
// optimizer state bit for bit (the ranks read the checkpoint once between them and exchange the
// rest); and a save that fails on one rank only is abandoned by all, while later saves commit.
#include <filesystem>
#include <fstream>

#include "core/checkpoint/layout.h"
#include "core/checkpoint/manifest.h"
#include "launcher/trainer.h"
#include "mpi_test.h"
#include "unit/test_util.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

Config small_mlp(const std::string& dir, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> sets = {"checkpoint.dir=" + dir};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return load_config_text(
      "model: {name: mlp, hidden: [32], dropout: 0.1}\n"
      "train: {steps: 7, global_batch: 16, micro_batch: 4, seed: 3, eval_every: 0,\n"
      "        eval_samples: 64}\n"
      "optim: {name: adamw, lr: 0.01, weight_decay: 0.1, warmup_steps: 2}\n"
      "checkpoint: {every_steps: 3, keep_last: 0}\n"
      "comm: {timeout_s: 120}\n"
      "metrics: {path: '', log_every: 100}\n",
      "checkpoint_test", sets);
}

// Everything a rank restores: parameters, then each optimizer state buffer.
std::vector<std::vector<double>> state_of(Trainer& t) {
  std::vector<std::vector<double>> out{as_doubles(t.model().params().params())};
  for (const NamedState& st : t.optimizer().state()) out.push_back(as_doubles(*st.tensor));
  return out;
}

class MultiRankCheckpoint : public ::testing::Test {
 protected:
  // One folder for the job: rank 0 makes it, every rank gets its path.
  void SetUp() override {
    Tensor path = Tensor::zeros(Shape{4096}, DType::u8, cpu_device());
    if (job().rank() == 0) {
      tmp_ = std::make_unique<TempDir>();
      std::copy(tmp_->path().begin(), tmp_->path().end(), path.data<uint8_t>());
    }
    job().broadcast(path, 0);
    dir_ = std::string(reinterpret_cast<const char*>(path.data<uint8_t>())) + "/ckpt";
  }
  void TearDown() override {
    job().barrier();
    tmp_.reset();
  }

  std::unique_ptr<TempDir> tmp_;
  std::string dir_;
};

TEST_F(MultiRankCheckpoint, EveryRankRestoresBitForBit) {
  const int world = job().world();
  std::vector<int64_t> committed;
  std::vector<std::vector<double>> saved;
  {
    Trainer t(small_mlp(dir_), job());
    t.checkpointer().set_commit_hook([&](const CommitInfo& c) { committed.push_back(c.step); });
    t.run();
    saved = state_of(t);
  }
  Mismatches m;
  if (job().rank() == 0) {
    if (committed != std::vector<int64_t>({3, 6, 7})) m.add("committed {} saves", committed.size());
    const VerifyReport r = verify_checkpoint(dir_ + "/step-00000007");
    if (!r.ok()) m.add("step 7 does not verify: {}", r.problems.front());
    if (r.manifest.world != world) m.add("manifest world {}, job {}", r.manifest.world, world);
    for (int rank = 0; rank < world; ++rank) {
      const std::string shard = optim_shard_name(rank, world);
      bool listed = false;
      for (const ManifestEntry& e : r.manifest.files) listed |= e.file == shard;
      if (!listed) m.add("the manifest does not list {}", shard);
      if (fs::exists(dir_ + "/step-00000007/" + rank_digest_name(rank))) {
        m.add("{} was left in the checkpoint", rank_digest_name(rank));
      }
    }
  }

  // Another seed starts every rank from other weights; the restore must bring back each one.
  Trainer r(small_mlp(dir_, {"train.seed=11"}), job());
  r.resume("auto");
  const std::vector<std::vector<double>> restored = state_of(r);
  if (r.optimizer().steps_taken() != 7) m.add("{} optimizer steps", r.optimizer().steps_taken());
  for (size_t i = 0; i < saved.size(); ++i) {
    int64_t differ = 0;
    for (size_t j = 0; j < saved[i].size(); ++j) differ += saved[i][j] != restored[i][j];
    if (differ) m.add("buffer {} (0: parameters): {} elements differ", i, differ);
  }
  // The optimizer state is not trivially zero (else the comparison proves nothing).
  int64_t nonzero = 0;
  for (double x : saved[1]) nonzero += x != 0;
  if (nonzero == 0) m.add("the first moment is all zero");
  EXPECT_AGREED_NO_MISMATCH(m);
}

TEST_F(MultiRankCheckpoint, ASaveThatFailsOnOneRankIsAbandonedByAll) {
  std::vector<int64_t> committed;
  Trainer t(small_mlp(dir_), job());
  // Rank 1's shard of step 3 cannot be written: a directory stands where the file goes (made
  // after the Trainer cleared leftovers from checkpoint.dir). Rank 0's files are fine.
  if (job().rank() == 0) {
    fs::create_directories(dir_ + "/step-00000003.tmp/" + optim_shard_name(1, job().world()));
  }
  job().barrier();
  t.checkpointer().set_commit_hook([&](const CommitInfo& c) { committed.push_back(c.step); });
  t.run();
  job().barrier();
  Mismatches m;
  if (job().rank() == 0) {
    if (committed != std::vector<int64_t>({6, 7})) m.add("committed {} saves", committed.size());
    std::vector<int64_t> on_disk;
    for (const CheckpointDir& c : list_checkpoints(dir_)) on_disk.push_back(c.step);
    if (on_disk != std::vector<int64_t>({6, 7})) m.add("{} checkpoints on disk", on_disk.size());
    if (fs::exists(dir_ + "/step-00000003.tmp")) m.add("the failed save's .tmp was left");
  }
  if (t.optimizer().steps_taken() != 7)
    m.add("training stopped at {}", t.optimizer().steps_taken());
  EXPECT_AGREED_NO_MISMATCH(m);
}

}  // namespace
}  // namespace kiln::test
