// Tracing inside a real (single-rank) Trainer: exactly the configured window of steps is
// recorded, with per-layer forward/backward spans, data, optimizer and waits on the main row;
// a window outside the run writes nothing; a trace.dir that cannot be created stops the run
// before it trains, naming the key.
#include "launcher/trace_session.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/trace_file.h"
#include "launcher/trainer.h"
#include "test_util.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

Config small_mlp(const std::vector<std::string>& sets) {
  return load_config_text(
      "model: {name: mlp, hidden: [32]}\n"
      "train: {steps: 5, global_batch: 32, micro_batch: 16, eval_every: 0, eval_samples: 64}\n"
      "metrics: {log_every: 100}\n",
      "trace_session_test", sets);
}

TEST(TraceSession, RecordsExactlyTheWindow) {
  TempDir tmp;
  std::unique_ptr<Communicator> comm = make_self_communicator();
  {
    Trainer t(small_mlp({"trace.dir=" + tmp.path(), "trace.start_step=2", "trace.steps=2"}), *comm);
    t.run();
  }
  const fs::path file = fs::path(tmp.path()) / trace::rank_file_name(0);
  ASSERT_TRUE(fs::exists(file));
  std::ifstream in(file);
  const nlohmann::json j = nlohmann::json::parse(in);
  const auto& k = j["otherData"]["kiln"];
  EXPECT_EQ(k["first_step"], 2);
  EXPECT_EQ(k["last_step"], 3);
  EXPECT_EQ(k["world"], 1);
  EXPECT_EQ(k["clock_offset_us"], 0.0);
  EXPECT_EQ(k["dropped"], 0);

  std::set<int64_t> steps;
  std::map<std::string, int> main_spans;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] != "X") continue;
    EXPECT_EQ(e["pid"], 0);
    if (e["tid"] == 1) main_spans[e["name"].get<std::string>()]++;
    if (e["name"] == "step") steps.insert(e["args"]["step"].get<int64_t>());
  }
  EXPECT_EQ(steps, (std::set<int64_t>{2, 3}));
  // Two steps of two micro-batches (32 = 2 x 16 on one rank): the MLP's 4 layers (flatten,
  // linear, relu, linear) run forward and backward 4 times.
  EXPECT_EQ(main_spans["data"], 4);
  EXPECT_EQ(main_spans["backward"], 4);
  EXPECT_EQ(main_spans["forward layers.0 flatten"], 4);
  EXPECT_EQ(main_spans["forward layers.3 linear"], 4);
  EXPECT_EQ(main_spans["backward layers.1 linear"], 4);
  EXPECT_EQ(main_spans["backward layers.2 relu"], 4);
  EXPECT_EQ(main_spans["gradient wait"], 2);
  EXPECT_EQ(main_spans["control all-reduce"], 2);
  EXPECT_EQ(main_spans["optimizer"], 2);
  EXPECT_EQ(main_spans["checkpoint"], 2);
}

TEST(TraceSession, WindowOutsideTheRunWritesNothing) {
  TempDir tmp;
  std::unique_ptr<Communicator> comm = make_self_communicator();
  Trainer t(small_mlp({"trace.dir=" + tmp.path(), "trace.start_step=6"}), *comm);
  t.run();
  EXPECT_TRUE(fs::is_empty(tmp.path()));
}

TEST(TraceSession, UnwritableDirectoryStopsBeforeTraining) {
  TempDir tmp;
  const std::string file = tmp.path() + "/a_file";
  std::ofstream(file) << "x";
  std::unique_ptr<Communicator> comm = make_self_communicator();
  const std::string m =
      error_message([&] { Trainer t(small_mlp({"trace.dir=" + file + "/trace"}), *comm); });
  EXPECT_TRUE(contains(m, "trace.dir (--set"));
  EXPECT_TRUE(contains(m, "= " + file + "/trace: cannot create the directory"));
}

}  // namespace
}  // namespace kiln::test
