// The Checkpointer inside a real (single-rank) Trainer: asynchronous saves commit at the steps
// asked for, retention keeps what it should, a restore brings back parameters, optimizer state
// and position bit for bit, saving adds no collective to the steps, a config that changes the
// model is refused by key, and a save that fails leaves the previous checkpoint the newest.
#include "launcher/checkpointer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/checkpoint/layout.h"
#include "core/checkpoint/manifest.h"
#include "core/error.h"
#include "launcher/trainer.h"
#include "unit/test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

Config small_mlp(const std::string& dir, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> sets = {"checkpoint.dir=" + dir, "train.eval_samples=64",
                                   "train.eval_every=0"};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return load_config_text(
      "model: {name: mlp, hidden: [32], dropout: 0.1}\n"
      "train: {steps: 12, global_batch: 32, micro_batch: 16, seed: 3}\n"
      "optim: {name: adamw, lr: 0.01, weight_decay: 0.1, warmup_steps: 2}\n"
      "checkpoint: {every_steps: 5, keep_last: 2}\n"
      "metrics: {log_every: 100}\n",
      "checkpointer_test", sets);
}

std::vector<float> host(const Tensor& t) { return t.to_vector<float>(); }

TEST(Checkpointer, SavesCommitsRetainsAndRestoresExactly) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/ckpt";
  std::unique_ptr<Communicator> comm = make_self_communicator();
  std::vector<int64_t> committed;
  std::vector<float> params, m, v;
  {
    Trainer t(small_mlp(dir), *comm);
    t.checkpointer().set_commit_hook([&](const CommitInfo& c) { committed.push_back(c.step); });
    t.resume("auto");  // nothing there yet: starts fresh
    t.run();
    params = host(t.model().params().params());
    std::vector<NamedState> st = t.optimizer().state();
    m = host(*st[0].tensor);
    v = host(*st[1].tensor);
    EXPECT_EQ(t.optimizer().steps_taken(), 12);
    EXPECT_EQ(t.checkpointer().saves_started(), 3);
  }
  // Saves at every_steps (5, 10) and at the end (12); keep_last 2 removed step 5.
  EXPECT_EQ(committed, (std::vector<int64_t>{5, 10, 12}));
  std::vector<int64_t> on_disk;
  for (const CheckpointDir& c : list_checkpoints(dir)) on_disk.push_back(c.step);
  EXPECT_EQ(on_disk, (std::vector<int64_t>{10, 12}));
  EXPECT_TRUE(verify_checkpoint(dir + "/step-00000012").ok());

  // A new trainer starts from different weights (another seed) and gets the saved ones back.
  Trainer r(small_mlp(dir, {"train.seed=3", "optim.lr=0.5"}), *comm);
  r.resume("auto");
  EXPECT_EQ(r.optimizer().steps_taken(), 12);
  std::vector<NamedState> st = r.optimizer().state();
  EXPECT_EQ(host(r.model().params().params()), params);
  EXPECT_EQ(host(*st[0].tensor), m);
  EXPECT_EQ(host(*st[1].tensor), v);
  // The saved state is not trivially zero (the comparison could not fail otherwise).
  EXPECT_NE(std::count(m.begin(), m.end(), 0.0f), static_cast<long>(m.size()));
}

TEST(Checkpointer, EveryMinutesSavesOnRankZerosClock) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/ckpt";
  std::unique_ptr<Communicator> comm = make_self_communicator();
  // 1e-9 minutes (60 ns) is shorter than any step: every step finds a save due. (0.36 ms was
  // not: on an idle core a step of this MLP can take 0.3 ms.)
  Trainer t(small_mlp(dir, {"checkpoint.every_steps=0", "checkpoint.every_minutes=1e-9",
                            "train.steps=6"}),
            *comm);
  std::vector<int64_t> committed;
  t.checkpointer().set_commit_hook([&](const CommitInfo& c) { committed.push_back(c.step); });
  t.run();
  EXPECT_EQ(committed, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
}

// Counts the collectives issued through it by what they serve (CollectiveTag::what), passing
// them on to a world of one.
class CountingComm final : public Communicator {
 public:
  std::map<std::string, int> counts;

  std::string backend() const override { return "counting"; }
  int rank() const override { return 0; }
  int world() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_world() const override { return 1; }
  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op,
                                         const CollectiveTag& tag) override {
    ++counts[tag.what];
    return self_->all_reduce_async(t, op, tag);
  }
  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp op,
                                             const CollectiveTag& tag) override {
    ++counts[tag.what];
    return self_->reduce_scatter_async(in, out, op, tag);
  }
  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out,
                                         const CollectiveTag& tag) override {
    ++counts[tag.what];
    return self_->all_gather_async(in, out, tag);
  }
  std::unique_ptr<Work> broadcast_async(Tensor& t, int root, const CollectiveTag& tag) override {
    ++counts[tag.what];
    return self_->broadcast_async(t, root, tag);
  }
  std::unique_ptr<Work> barrier_async(const CollectiveTag& tag) override {
    ++counts[tag.what];
    return self_->barrier_async(tag);
  }
  [[noreturn]] void abort(int code) noexcept override {
    self_->abort(code);
    std::_Exit(code);  // not reached
  }

 private:
  std::unique_ptr<Communicator> self_ = make_self_communicator();
};

// Saves in flight and rank 0's clock (every_minutes) ride on the trainer's per-step control
// all-reduce: a step issues that one collective (and gradient buckets when world > 1), with or
// without checkpointing. The Checkpointer issues one of its own only where a save must wait
// for the previous one, or at the end of the run: at most one per save.
TEST(Checkpointer, SavesAddNoCollectiveToSteps) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/ckpt";
  CountingComm comm;
  // every_minutes is never due in this run, but rank 0's clock is consulted at every step.
  Trainer t(small_mlp(dir, {"checkpoint.every_minutes=1000", "checkpoint.keep_last=0"}), comm);
  comm.counts.clear();
  t.run();
  const int saves = static_cast<int>(t.checkpointer().saves_started());
  EXPECT_EQ(saves, 3);  // steps 5, 10 and the end (12)
  EXPECT_EQ(comm.counts["control"], 12);
  EXPECT_EQ(comm.counts["evaluation"], 1);
  EXPECT_GE(comm.counts["checkpoint"], 1);  // the end of the run waits for the last save
  EXPECT_LE(comm.counts["checkpoint"], saves);
  int others = 0;
  for (const auto& [what, n] : comm.counts) {
    if (what != "control" && what != "evaluation" && what != "checkpoint") {
      others += n;
      ADD_FAILURE() << n << " collective(s) tagged '" << what << "' during training";
    }
  }
  EXPECT_EQ(others, 0);
  EXPECT_EQ(list_checkpoints(dir).size(), 3u);
}

TEST(Checkpointer, RestoreFromAnExplicitOlderCheckpoint) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/ckpt";
  std::unique_ptr<Communicator> comm = make_self_communicator();
  {
    Trainer t(small_mlp(dir, {"checkpoint.keep_last=0"}), *comm);
    t.run();
  }
  Trainer r(small_mlp(dir), *comm);
  r.resume(dir + "/step-00000005");
  EXPECT_EQ(r.optimizer().steps_taken(), 5);
  EXPECT_THROW(r.resume(dir + "/step-00000099"), Error);
}

TEST(Checkpointer, ModelChangeIsRefusedNamingTheKey) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/ckpt";
  std::unique_ptr<Communicator> comm = make_self_communicator();
  {
    Trainer t(small_mlp(dir, {"train.steps=5"}), *comm);
    t.run();
  }
  Trainer r(small_mlp(dir, {"model.hidden=[48]"}), *comm);
  try {
    r.resume("auto");
    ADD_FAILURE() << "a changed model.hidden was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("model.hidden: [32] -> [48]"), std::string::npos) << e.message();
  }
}

TEST(Checkpointer, AFailedSaveKeepsThePreviousCheckpoint) {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/ckpt";
  fs::create_directories(dir);
  // A file where the save of step 10 wants its .tmp directory: that save fails.
  { std::ofstream(dir + "/step-00000010.tmp") << "in the way"; }
  std::unique_ptr<Communicator> comm = make_self_communicator();
  std::vector<int64_t> committed;
  {
    Trainer t(small_mlp(dir, {"train.steps=10", "checkpoint.keep_last=1"}), *comm);
    t.checkpointer().set_commit_hook([&](const CommitInfo& c) { committed.push_back(c.step); });
    t.run();  // training goes on past the failed save
    EXPECT_EQ(t.optimizer().steps_taken(), 10);
  }
  EXPECT_EQ(committed, (std::vector<int64_t>{5}));
  std::vector<std::string> skipped;
  std::optional<CheckpointDir> c = newest_valid_checkpoint(dir, &skipped);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->step, 5);
  EXPECT_TRUE(skipped.empty());
}

}  // namespace
}  // namespace kiln
