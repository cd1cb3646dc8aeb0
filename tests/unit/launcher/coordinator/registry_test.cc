// The registry over a real store: membership rules, commits that need every rank, actions, and
// a reopened database that gives back everything that was committed.
#include "launcher/coordinator/registry.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace kiln::coord {
namespace {

using grpc::StatusCode;

pb::RegisterRequest reg(const std::string& job, int rank, int world, int64_t pid,
                        std::optional<int64_t> generation = std::nullopt,
                        const std::string& hash = "00000000000000aa") {
  pb::RegisterRequest r;
  r.set_job(job);
  if (generation) r.set_generation(*generation);
  r.set_rank(rank);
  r.set_world(world);
  r.set_host("h");
  r.set_pid(pid);
  r.set_config_hash(hash);
  r.set_checkpoint_root("/runs/j/ckpt");
  return r;
}

pb::CommitCheckpointRequest commit(const std::string& job, int64_t gen, int rank, int64_t step,
                                   const std::string& path = "") {
  pb::CommitCheckpointRequest c;
  c.set_job(job);
  c.set_generation(gen);
  c.set_rank(rank);
  c.set_step(step);
  c.set_path(path.empty() ? "step-" + std::to_string(step) : path);
  c.set_manifest_checksum("xxh3:" + std::to_string(step));
  c.set_duration_s(0.5 + rank);
  return c;
}

// Runs one durable operation in its own transaction, as the writer does.
template <typename Fn>
grpc::Status in_tx(Store& store, Fn&& fn) {
  store.begin();
  grpc::Status s = fn();
  store.commit();
  return s;
}

class RegistryTest : public ::testing::Test {
 protected:
  void open() {
    registry_.reset();
    store_ = std::make_unique<Store>(dir_.path());
    registry_ = std::make_unique<Registry>("test");
    registry_->restore(store_->load(100));
  }
  grpc::Status do_register(const pb::RegisterRequest& r, int64_t* gen = nullptr) {
    pb::RegisterReply reply;
    grpc::Status s = in_tx(*store_, [&] { return registry_->register_member(*store_, r, &reply); });
    if (gen) *gen = reply.generation();
    return s;
  }
  grpc::Status do_commit(const pb::CommitCheckpointRequest& c, bool* committed = nullptr) {
    pb::CommitCheckpointReply reply;
    grpc::Status s =
        in_tx(*store_, [&] { return registry_->commit_checkpoint(*store_, c, &reply); });
    if (committed) *committed = reply.committed();
    return s;
  }
  pb::JobStatus job(const std::string& id) {
    pb::GetJobRequest req;
    req.set_job(id);
    pb::JobStatus out;
    EXPECT_TRUE(registry_->get_job(req, &out).ok());
    return out;
  }

  test::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryTest, CheckpointCommitsWhenEveryRankAckedAndSurvivesReopen) {
  open();
  int64_t gen = -1;
  for (int r = 0; r < 3; ++r) ASSERT_TRUE(do_register(reg("j", r, 3, 10 + r), &gen).ok());
  EXPECT_EQ(gen, 0);
  bool committed = true;
  ASSERT_TRUE(do_commit(commit("j", 0, 0, 100), &committed).ok());
  EXPECT_FALSE(committed);
  ASSERT_TRUE(do_commit(commit("j", 0, 0, 100), &committed).ok());  // a replay counts once
  EXPECT_FALSE(committed);
  ASSERT_TRUE(do_commit(commit("j", 0, 1, 100, "/runs/j/ckpt/step-100"), &committed).ok());
  EXPECT_FALSE(committed);
  EXPECT_EQ(job("j").pending_checkpoints(0).acks(), 2);
  ASSERT_TRUE(do_commit(commit("j", 0, 2, 100), &committed).ok());
  EXPECT_TRUE(committed);
  // Step 200 gets two acks only: pending, not committed.
  ASSERT_TRUE(do_commit(commit("j", 0, 0, 200)).ok());
  ASSERT_TRUE(do_commit(commit("j", 0, 1, 200)).ok());

  open();  // a new process reading the same database
  pb::JobStatus s = job("j");
  ASSERT_EQ(s.checkpoints_size(), 1);
  EXPECT_EQ(s.checkpoints(0).step(), 100);
  EXPECT_EQ(s.checkpoints(0).path(), "/runs/j/ckpt/step-100");
  EXPECT_EQ(s.checkpoints(0).manifest_checksum(), "xxh3:100");
  EXPECT_EQ(s.checkpoints(0).duration_s(), 2.5);  // the slowest of ranks 0..2
  EXPECT_EQ(s.latest_checkpoint().step(), 100);
  ASSERT_EQ(s.pending_checkpoints_size(), 1);
  EXPECT_EQ(s.pending_checkpoints(0).acks(), 2);
  EXPECT_EQ(s.members_size(), 3);
  EXPECT_EQ(s.members(2).pid(), 12);
  EXPECT_EQ(s.members(0).heartbeat_age_s(), -1);  // nothing heard since the restart
  // The third ack after the restart completes step 200.
  ASSERT_TRUE(do_commit(commit("j", 0, 2, 200), &committed).ok());
  EXPECT_TRUE(committed);
  EXPECT_EQ(job("j").latest_checkpoint().step(), 200);
}

TEST_F(RegistryTest, MembershipRules) {
  open();
  int64_t gen = -1;
  ASSERT_TRUE(do_register(reg("j", 0, 2, 10), &gen).ok());
  EXPECT_EQ(do_register(reg("j", 1, 4, 11)).error_code(), StatusCode::OK);  // new world: gen 1
  EXPECT_EQ(job("j").generation(), 1);
  EXPECT_EQ(do_register(reg("j", 1, 2, 11, 1)).error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(do_register(reg("j", 0, 4, 12, 0)).error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(do_register(reg("j", 0, 4, 12, 1, "00000000000000bb")).error_code(),
            StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(do_register(reg("j", 0, 4, 12, 1), &gen).ok());
  EXPECT_EQ(gen, 1);
  ASSERT_TRUE(do_register(reg("j", 0, 4, 12, 1), &gen).ok());  // the same process again
  EXPECT_EQ(do_register(reg("j", 0, 4, 99, 1)).error_code(), StatusCode::FAILED_PRECONDITION);
  // Without a generation, a rank whose slot is taken by another process starts the next one.
  ASSERT_TRUE(do_register(reg("j", 0, 4, 99), &gen).ok());
  EXPECT_EQ(gen, 2);
  pb::RegisterRequest other_root = reg("j", 1, 4, 98);
  other_root.set_checkpoint_root("/elsewhere");
  EXPECT_EQ(do_register(other_root).error_code(), StatusCode::FAILED_PRECONDITION);
  pb::JobStatus s = job("j");
  EXPECT_EQ(s.restarts(), 2);
  EXPECT_EQ(s.failures(), 0);
  EXPECT_EQ(s.generations(2).cause(), pb::CAUSE_RERUN);
}

TEST_F(RegistryTest, ActionsReachTheirGenerationUntilACheckpointCommits) {
  open();
  ASSERT_TRUE(do_register(reg("j", 0, 1, 10)).ok());
  pb::SetActionRequest a;
  a.set_job("j");
  a.set_action(pb::ACTION_CHECKPOINT_NOW);
  a.set_reason("hosts added");
  pb::SetActionReply ar;
  ASSERT_TRUE(in_tx(*store_, [&] { return registry_->set_action(*store_, a, &ar); }).ok());
  EXPECT_EQ(ar.action_id(), 1u);
  pb::HeartbeatRequest hb;
  hb.set_job("j");
  hb.set_generation(0);
  hb.set_step(5);
  pb::HeartbeatReply reply;
  ASSERT_TRUE(registry_->heartbeat(hb, &reply).ok());
  EXPECT_EQ(reply.action(), pb::ACTION_CHECKPOINT_NOW);
  EXPECT_EQ(reply.action_id(), 1u);
  EXPECT_EQ(reply.reason(), "hosts added");
  ASSERT_TRUE(do_commit(commit("j", 0, 0, 6)).ok());
  reply.Clear();
  ASSERT_TRUE(registry_->heartbeat(hb, &reply).ok());
  EXPECT_EQ(reply.action(), pb::ACTION_CONTINUE);
  hb.set_rank(1);
  EXPECT_EQ(registry_->heartbeat(hb, &reply).error_code(), StatusCode::OUT_OF_RANGE);
  hb.set_rank(0);
  hb.set_generation(3);
  EXPECT_EQ(registry_->heartbeat(hb, &reply).error_code(), StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace kiln::coord
