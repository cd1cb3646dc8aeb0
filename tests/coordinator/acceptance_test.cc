// Acceptance tests of issue 6 with the real binaries on loopback: a `kiln coordinator` process,
// jobs of 1, 2 and 4 ranks (`kiln train` alone and under mpirun, and kiln_fake_ranks for
// exact metric values), `kiln status`, a scrape of /metrics, and a coordinator killed with
// SIGKILL mid-job and restarted. Every process is killed when a test ends.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "coord_test_util.h"
#include "launcher/coordinator/prometheus.h"
#include "test_util.h"

namespace kiln::test {
namespace {

const std::string kToken = "acceptance-token-0123456789";

// proto3 JSON prints 64-bit integers as strings.
int64_t as_int(const nlohmann::json& j) {
  return j.is_string() ? std::stoll(j.get<std::string>()) : j.get<int64_t>();
}

class Acceptance : public ::testing::Test {
 protected:
  void SetUp() override {
    token_file_ = dir_.path() + "/token";
    write_file(token_file_, kToken + "\n");
  }
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

  std::unique_ptr<Process> fake_ranks(const CoordinatorProcess& c, const std::string& job,
                                      int world, int steps, double step_ms, int every) {
    return std::make_unique<Process>(
        std::vector<std::string>{KILN_FAKE_RANKS, "--address", c.address(), "--token-file",
                                 token_file_, "--job", job, "--world", std::to_string(world),
                                 "--steps", std::to_string(steps), "--step-ms",
                                 std::to_string(step_ms), "--checkpoint-every",
                                 std::to_string(every), "--checkpoint-root", path("ckpt-" + job)},
        path(job + ".log"));
  }
  // `kiln status --json`, parsed; fails the test when the command fails.
  nlohmann::json status_json(const CoordinatorProcess& c, const std::string& job) {
    std::string out;
    const int rc =
        run_command(std::string(KILN_BINARY) + " status --coordinator " + c.address() +
                        " --token-file " + token_file_ + " --json --job " + job + " 2>/dev/null",
                    &out);
    EXPECT_EQ(rc, 0) << out;
    return rc == 0 ? nlohmann::json::parse(out) : nlohmann::json::object();
  }
  pb::JobStatus get_job(const CoordinatorProcess& c, const std::string& job, bool* ok) {
    TestClient client(c.address(), kToken);
    pb::GetJobRequest req;
    req.set_job(job);
    pb::JobStatus s;
    *ok = client.stub->GetJob(client.ctx().get(), req, &s).ok();
    return s;
  }
  std::vector<int64_t> committed_steps(const pb::JobStatus& s) {
    std::vector<int64_t> steps;
    for (const pb::Checkpoint& c : s.checkpoints()) steps.push_back(c.step());
    return steps;
  }

  TempDir dir_;
  std::string token_file_;
};

TEST_F(Acceptance, TwoAndFourRankJobsShowInStatusAndMetrics) {
  CoordinatorProcess coord(path("state"), token_file_);
  auto two = fake_ranks(coord, "ddp2", 2, 20, 10, 5);
  auto four = fake_ranks(coord, "ddp4", 4, 20, 10, 5);
  ASSERT_EQ(two->wait(120), 0) << two->output();
  ASSERT_EQ(four->wait(120), 0) << four->output();

  for (auto [job, world] : {std::pair<std::string, int>{"ddp2", 2}, {"ddp4", 4}}) {
    nlohmann::json s = status_json(coord, job);
    ASSERT_EQ(s["members"].size(), static_cast<size_t>(world)) << s.dump();
    EXPECT_EQ(s["world"].get<int>(), world);
    EXPECT_EQ(as_int(s["step"]), 20);
    for (int r = 0; r < world; ++r) {
      const nlohmann::json& m = s["members"][r];
      EXPECT_EQ(m["rank"].get<int>(), r);
      EXPECT_EQ(as_int(m["step"]), 20);
      EXPECT_EQ(m["phase"].get<std::string>(), "PHASE_FINISHED");
      EXPECT_DOUBLE_EQ(m["samples_per_s"].get<double>(), 100.0 * (r + 1));
    }
    ASSERT_EQ(s["checkpoints"].size(), 4u);  // steps 5, 10, 15, 20, each acked by every rank
    EXPECT_EQ(as_int(s["latest_checkpoint"]["step"]), 20);
    EXPECT_EQ(s["latest_checkpoint"]["path"].get<std::string>(),
              path("ckpt-" + job) + "/step-00000020");
  }
  std::string table;
  ASSERT_EQ(run_command(std::string(KILN_BINARY) + " status --coordinator " + coord.address() +
                            " --token-file " + token_file_ + " --job ddp4",
                        &table),
            0);
  EXPECT_NE(table.find("job ddp4  generation 0  world 4"), std::string::npos) << table;
  EXPECT_NE(table.find("latest checkpoint: step 20"), std::string::npos) << table;

  std::string body;
  ASSERT_EQ(http_get(coord.http_port(), "/metrics", &body), 200);
  coord::PromText text = coord::parse_prometheus(body);
  std::map<std::string, double> seen;  // "name job rank" -> value
  for (const coord::PromSample& s : text.samples) {
    auto job = s.labels.find("job");
    auto rank = s.labels.find("rank");
    seen[s.name + " " + (job == s.labels.end() ? "" : job->second) + " " +
         (rank == s.labels.end() ? "" : rank->second)] = s.value;
  }
  EXPECT_EQ(text.families["kiln_rank_step"].type, "gauge");
  EXPECT_EQ(text.families["kiln_job_restarts_total"].type, "counter");
  EXPECT_EQ(text.families["kiln_checkpoint_duration_seconds"].type, "summary");
  for (int r = 0; r < 4; ++r) {
    const std::string key = " ddp4 " + std::to_string(r);
    EXPECT_EQ(seen["kiln_rank_step" + key], 20);
    EXPECT_DOUBLE_EQ(seen["kiln_rank_loss" + key], 2.0 / 21);
    EXPECT_EQ(seen["kiln_rank_samples_per_second" + key], 100.0 * (r + 1));
    EXPECT_EQ(seen["kiln_rank_step_milliseconds" + key], 10);
    EXPECT_TRUE(seen.count("kiln_rank_heartbeat_age_seconds" + key)) << key;
  }
  EXPECT_EQ(seen.count("kiln_rank_step ddp4 4"), 0u);
  EXPECT_EQ(seen["kiln_job_world_size ddp2 "], 2);
  EXPECT_EQ(seen["kiln_job_world_size ddp4 "], 4);
  EXPECT_EQ(seen["kiln_job_restarts_total ddp4 "], 0);
  EXPECT_EQ(seen["kiln_checkpoints_committed_total ddp4 "], 4);
  EXPECT_EQ(seen["kiln_checkpoint_latest_step ddp2 "], 20);
  // Each commit's duration is the slowest rank's: 0.01 * world.
  EXPECT_NEAR(seen["kiln_checkpoint_duration_seconds_sum ddp4 "], 4 * 0.04, 1e-12);
  EXPECT_EQ(seen["kiln_checkpoint_duration_seconds_count ddp4 "], 4);
}

// The same with real ranks: `mpirun -np 2` and `-np 4` jobs of `kiln train` (a tiny MLP, 12
// steps, a checkpoint every 4) report to the coordinator; `kiln status --json` shows every rank
// at the last step, finished, and the checkpoints each committed by all ranks.
TEST_F(Acceptance, MpirunJobsOfTwoAndFourRanksShowInStatus) {
  if (std::string(KILN_MPIRUN).empty()) GTEST_SKIP() << "built without MPI (no mpirun)";
  CoordinatorProcess coord(path("state"), token_file_);
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  for (int world : {2, 4}) {
    const std::string job = "mpi" + std::to_string(world);
    const std::string ckpt = path("ckpt-" + job);
    std::vector<std::string> argv = {KILN_MPIRUN, "-np", std::to_string(world)};
    if (world > cores) argv.push_back("--oversubscribe");
    for (const std::string& a :
         {std::string(KILN_BINARY), std::string("train"), std::string("--config"),
          std::string(KILN_SOURCE_DIR) + "/configs/mlp_fashion.yaml"}) {
      argv.push_back(a);
    }
    for (const std::string& kv :
         {std::string("model.hidden=[16]"), std::string("train.steps=12"),
          std::string("train.global_batch=32"), std::string("train.micro_batch=8"),
          std::string("train.eval_every=0"), std::string("train.eval_samples=64"),
          std::string("metrics.path="), "checkpoint.dir=" + ckpt,
          std::string("checkpoint.every_steps=4"), "coordinator.address=" + coord.address(),
          "coordinator.job=" + job, "coordinator.token_file=" + token_file_,
          std::string("coordinator.heartbeat_s=0.2")}) {
      argv.push_back("--set");
      argv.push_back(kv);
    }
    Process run(argv, path(job + ".log"),
                {{"OMPI_ALLOW_RUN_AS_ROOT", "1"}, {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"}});
    ASSERT_EQ(run.wait(300), 0) << run.output();

    nlohmann::json s = status_json(coord, job);
    ASSERT_EQ(s["members"].size(), static_cast<size_t>(world)) << s.dump();
    EXPECT_EQ(s["world"].get<int>(), world);
    EXPECT_EQ(as_int(s["step"]), 12);
    std::set<int64_t> pids;
    for (int r = 0; r < world; ++r) {
      const nlohmann::json& m = s["members"][r];
      EXPECT_EQ(m["rank"].get<int>(), r);
      EXPECT_EQ(as_int(m["step"]), 12);
      EXPECT_EQ(m["phase"].get<std::string>(), "PHASE_FINISHED");
      pids.insert(as_int(m["pid"]));
    }
    EXPECT_EQ(pids.size(), static_cast<size_t>(world));  // one process per rank
    ASSERT_EQ(s["checkpoints"].size(), 3u) << s.dump();
    for (size_t i = 0; i < 3; ++i) {
      const nlohmann::json& c = s["checkpoints"][i];
      EXPECT_EQ(as_int(c["step"]), 4 * static_cast<int64_t>(i + 1));
      EXPECT_TRUE(c["committed"].get<bool>());
      EXPECT_EQ(c["acks"].get<int>(), world);
    }
    EXPECT_EQ(s["latest_checkpoint"]["path"].get<std::string>(), ckpt + "/step-00000012");
    EXPECT_TRUE(std::filesystem::exists(ckpt + "/step-00000012/MANIFEST.json"));
  }
}

TEST_F(Acceptance, SigkilledCoordinatorLosesNoCommittedCheckpoint) {
  CoordinatorProcess coord(path("state"), token_file_);
  // 2 ranks, 150 steps of 20 ms (3 s), a checkpoint every 10 steps.
  auto job = fake_ranks(coord, "elastic", 2, 150, 20, 10);
  bool ok = false;
  pb::JobStatus before;
  for (int i = 0; i < 3000; ++i) {
    before = get_job(coord, "elastic", &ok);
    if (ok && before.checkpoints_size() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(before.checkpoints_size(), 2);
  coord.kill9();
  // Training goes on without the coordinator.
  const std::string progress_before = job->output();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(job->running()) << job->output();
  coord.restart();

  // Right after the restart the committed checkpoints are all there, before any replay.
  pb::JobStatus after = get_job(coord, "elastic", &ok);
  ASSERT_TRUE(ok);
  std::vector<int64_t> kept = committed_steps(after);
  for (int64_t step : committed_steps(before)) {
    EXPECT_NE(std::find(kept.begin(), kept.end(), step), kept.end()) << "lost step " << step;
  }
  ASSERT_EQ(job->wait(120), 0) << job->output();
  EXPECT_GT(job->output().size(), progress_before.size());
  after = get_job(coord, "elastic", &ok);
  ASSERT_TRUE(ok);
  std::vector<int64_t> want;
  for (int s = 10; s <= 150; s += 10) want.push_back(s);
  EXPECT_EQ(committed_steps(after), want);  // those written while it was down were replayed
  EXPECT_EQ(after.generation(), 0);
  EXPECT_EQ(after.step(), 150);
  EXPECT_NE(coord.log().find("job 'elastic': checkpoint: checkpoint step 150"), std::string::npos);
}

TEST_F(Acceptance, SingleRankTrainingReportsAndOutlivesTheCoordinator) {
  CoordinatorProcess coord(path("state"), token_file_);
  const std::string metrics = path("train.jsonl");
  Process train({KILN_BINARY, "train",
                 "--config",  std::string(KILN_SOURCE_DIR) + "/configs/mlp_fashion.yaml",
                 "--set",     "train.steps=300",
                 "--set",     "model.hidden=[32]",
                 "--set",     "train.eval_every=0",
                 "--set",     "metrics.log_every=50",
                 "--set",     "metrics.path=" + metrics,
                 "--set",     "coordinator.address=" + coord.address(),
                 "--set",     "coordinator.job=train1",
                 "--set",     "coordinator.token_file=" + token_file_,
                 "--set",     "coordinator.heartbeat_s=0.2"},
                path("train.log"));
  bool ok = false;
  for (int i = 0; i < 6000 && !ok; ++i) {
    get_job(coord, "train1", &ok);
    if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(ok) << train.output();
  coord.kill9();
  ASSERT_TRUE(train.running()) << "training ended when the coordinator died:\n" << train.output();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  coord.restart();
  ASSERT_EQ(train.wait(300), 0) << train.output();
  // Every step ran: the last metrics line is the final evaluation after step 300.
  std::istringstream lines(read_file(metrics));
  std::string line, last_train;
  while (std::getline(lines, line)) {
    if (line.find("\"loss\"") != std::string::npos) last_train = line;
  }
  ASSERT_FALSE(last_train.empty());
  EXPECT_EQ(nlohmann::json::parse(last_train)["step"].get<int64_t>(), 300);
  // The job is still known after the restart: its registration was durable.
  nlohmann::json s = status_json(coord, "train1");
  ASSERT_EQ(s["members"].size(), 1u) << s.dump();
  EXPECT_EQ(s["world"].get<int>(), 1);
  EXPECT_EQ(s["members"][0]["pid"], std::to_string(train.pid()));
}

TEST_F(Acceptance, RefusedCallsFailTheClientAndLogAtTheCoordinator) {
  CoordinatorProcess coord(path("state"), token_file_);
  const std::string wrong = path("wrong-token");
  write_file(wrong, "not-the-token-0123456789\n");
  std::string out;
  EXPECT_NE(run_command(std::string(KILN_BINARY) + " status --coordinator " + coord.address() +
                            " --token-file " + wrong + " --job x",
                        &out),
            0);
  EXPECT_NE(out.find("UNAUTHENTICATED"), std::string::npos) << out;
  EXPECT_NE(run_command("env -u KILN_COORDINATOR_TOKEN " + std::string(KILN_BINARY) +
                            " status --coordinator " + coord.address() + " --job x",
                        &out),
            0);
  EXPECT_NE(out.find("no coordinator token"), std::string::npos) << out;
  EXPECT_NE(run_command(std::string(KILN_BINARY) + " status --coordinator " + coord.address() +
                            " --token-file " + token_file_ + " --job 'bad job'",
                        &out),
            0);
  EXPECT_NE(out.find("INVALID_ARGUMENT"), std::string::npos) << out;
  coord.terminate();
  const std::string log = coord.log();
  EXPECT_NE(log.find("refused GetJob from ipv4:127.0.0.1"), std::string::npos) << log;
  EXPECT_NE(log.find("UNAUTHENTICATED"), std::string::npos) << log;
  EXPECT_NE(log.find("INVALID_ARGUMENT: job 'bad job'"), std::string::npos) << log;
  EXPECT_NE(log.find("SIGTERM received"), std::string::npos) << log;
}

}  // namespace
}  // namespace kiln::test
