// The worker's reporter: a bounded queue that drops the oldest points while the coordinator is
// away, replay of everything unacknowledged after a coordinator restart, and actions delivered
// once per id.
#include "launcher/coordinator/reporter.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "coord_test_util.h"
#include "launcher/coordinator/server.h"
#include "test_util.h"

namespace kiln::coord {
namespace {

namespace pb = ::kiln::coord::v1;
const std::string kToken = "reporter-token-0123456789";

// A loopback port that nothing listens on (bound, then released).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Polls `cond` for up to 60 s (the machine may be loaded); true once it holds.
template <typename Cond>
bool eventually(Cond cond) {
  for (int i = 0; i < 3000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

ReporterOptions options(int port, const std::string& root = "") {
  ReporterOptions o;
  o.client.address = "127.0.0.1:" + std::to_string(port);
  o.client.token = kToken;
  o.job = "rep";
  o.rank = 0;
  o.world = 1;
  o.heartbeat_s = 0.05;
  o.checkpoint_root = root;
  return o;
}

std::unique_ptr<CoordinatorServer> start_server(const std::string& dir, int port) {
  test::write_file(dir + "/tokens", kToken + "\n");
  ServerOptions o;
  o.listen = "127.0.0.1:" + std::to_string(port);
  o.state_dir = dir + "/state";
  o.token_file = dir + "/tokens";
  return std::make_unique<CoordinatorServer>(o);
}

TEST(Reporter, QueueDropsTheOldestPointsWhileTheCoordinatorIsAway) {
  ReporterOptions o = options(closed_port());
  o.queue_capacity = 16;
  GrpcReporter r(o);
  for (int s = 1; s <= 100; ++s) r.on_step({s, 1.0 / s, 10.0, 1.0});
  GrpcReporter::Stats st = r.stats();
  EXPECT_EQ(st.points_dropped, 84u);
  EXPECT_EQ(st.points_acked, 0u);
  EXPECT_FALSE(st.registered);
}

TEST(Reporter, ReplaysWhatTheCoordinatorMissedAfterItRestarts) {
  test::TempDir dir;
  auto server = start_server(dir.path(), 0);
  const int port = server->port();
  const std::string root = dir.path() + "/ckpt";
  GrpcReporter r(options(port, root));
  for (int s = 1; s <= 50; ++s) r.on_step({s, 1.0 / s, 10.0, 1.0});
  r.on_checkpoint({10, "step-10", "xxh3:10", 0.1, 100});
  ASSERT_TRUE(eventually([&] {
    auto st = r.stats();
    return st.points_acked == 50 && st.commits_acked == 1;
  }));
  server.reset();  // the coordinator goes away; training goes on
  for (int s = 51; s <= 100; ++s) r.on_step({s, 1.0 / s, 10.0, 1.0});
  r.on_checkpoint({20, "step-20", "xxh3:20", 0.1, 100});
  ASSERT_TRUE(eventually([&] { return r.stats().failed_calls > 0; }));
  EXPECT_EQ(r.stats().commits_acked, 1u);

  server = start_server(dir.path(), port);
  ASSERT_TRUE(eventually([&] {
    auto st = r.stats();
    return st.points_acked == 100 && st.commits_acked == 2 && st.heartbeats > 0 && st.registered;
  })) << "acked "
      << r.stats().points_acked;
  GrpcReporter::Stats st = r.stats();
  EXPECT_GE(st.registrations, 2u);
  EXPECT_EQ(st.points_dropped, 0u);
  EXPECT_EQ(st.committed_steps, (std::vector<int64_t>{10, 20}));

  test::TestClient client("127.0.0.1:" + std::to_string(port), kToken);
  pb::GetJobRequest get;
  get.set_job("rep");
  pb::JobStatus job;
  ASSERT_TRUE(client.stub->GetJob(client.ctx().get(), get, &job).ok());
  EXPECT_EQ(job.generation(), 0);  // the reporter came back into its own generation
  ASSERT_EQ(job.members_size(), 1);
  EXPECT_EQ(job.members(0).step(), 100);
  ASSERT_EQ(job.checkpoints_size(), 2);
  EXPECT_EQ(job.checkpoints(1).path(), root + "/step-20");
}

TEST(Reporter, ActionsAreDeliveredOncePerId) {
  test::TempDir dir;
  auto server = start_server(dir.path(), 0);
  GrpcReporter r(options(server->port()));
  r.on_step({1, 1.0, 1.0, 1.0});
  ASSERT_TRUE(eventually([&] { return r.stats().heartbeats > 0; }));
  EXPECT_EQ(r.pending_action().action, CoordinatorAction::kContinue);

  test::TestClient client("127.0.0.1:" + std::to_string(server->port()), kToken);
  pb::SetActionRequest a;
  a.set_job("rep");
  a.set_action(pb::ACTION_CHECKPOINT_NOW);
  pb::SetActionReply ar;
  ASSERT_TRUE(client.stub->SetAction(client.ctx().get(), a, &ar).ok());
  ASSERT_TRUE(eventually([&] { return r.pending_action().id == ar.action_id(); }));
  EXPECT_EQ(r.pending_action().action, CoordinatorAction::kCheckpointNow);
  r.action_applied(ar.action_id());
  EXPECT_EQ(r.pending_action().action, CoordinatorAction::kContinue);
  // Later heartbeats still carry the action (no checkpoint was committed) but it stays done.
  const uint64_t beats = r.stats().heartbeats;
  ASSERT_TRUE(eventually([&] { return r.stats().heartbeats > beats + 2; }));
  EXPECT_EQ(r.pending_action().action, CoordinatorAction::kContinue);

  pb::GetJobRequest get;
  get.set_job("rep");
  pb::JobStatus job;
  ASSERT_TRUE(eventually([&] {
    client.stub->GetJob(client.ctx().get(), get, &job);
    return job.action().applied_ranks() == 1;
  }));
}

}  // namespace
}  // namespace kiln::coord
