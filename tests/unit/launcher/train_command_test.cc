// `kiln train` as users run it (the real binary, in a scratch folder): bad configs stop it
// before anything starts, with a message naming the key and the line; overrides and their
// precedence; a missing dataset; a non-finite loss stops the run or is skipped and counted.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace kiln::test {
namespace {

const char* kDataset = "/usr/share/datasets/fashion-mnist";

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool dataset_present() { return exists(std::string(kDataset) + "/train-images-idx3-ubyte.gz"); }

class TrainCommandTest : public ::testing::Test {
 protected:
  // A tiny run: an MLP with one hidden layer of 16, 6 steps of 32 samples, one CPU thread.
  // `extra` replaces line 13, in the train section.
  void write_config(const std::string& extra = "  seed: 1") {
    std::string yaml = R"(model:
  name: mlp
  hidden: [16]
data:
  path: DATASET
train:
  steps: 6
  global_batch: 32
  micro_batch: 32
  eval_every: 0
  device: cpu
  threads: 1
EXTRA
optim:
  name: adamw
  lr: 1.0e-3
metrics:
  path: METRICS
  log_every: 1
)";
    for (auto [from, to] : {std::pair<std::string, std::string>{"DATASET", kDataset},
                            {"EXTRA", extra},
                            {"METRICS", metrics_path()}}) {
      yaml.replace(yaml.find(from), from.size(), to);
    }
    std::ofstream(config_path()) << yaml;
  }
  std::string config_path() const { return dir_.path() + "/x.yaml"; }
  std::string metrics_path() const { return dir_.path() + "/metrics.jsonl"; }

  // Runs `kiln train --config x.yaml ARGS` in the scratch folder with `env` (VAR=value ...)
  // and none of the caller's KILN_* overrides.
  int kiln(const std::string& args, const std::string& env = "") {
    const std::string cmd =
        "cd '" + dir_.path() + "' && env -u KILN_SET -u KILN_DEBUG_NAN_AT_STEP -u KILN_LOG_LEVEL " +
        env + " " + KILN_BINARY + " train --config '" + config_path() + "' " + args;
    return run_command(cmd, &output_);
  }

  // Stopped with a failure before training started: no metrics file, no model built.
  void expect_refused(int rc) {
    EXPECT_NE(rc, 0) << output_;
    EXPECT_FALSE(exists(metrics_path())) << "a metrics file was created";
    EXPECT_FALSE(contains(output_, "parameters (")) << "a model was built:\n" << output_;
  }

  std::vector<nlohmann::json> metrics() const {
    std::vector<nlohmann::json> out;
    std::ifstream f(metrics_path());
    std::string line;
    while (std::getline(f, line)) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  TempDir dir_;
  std::string output_;
};

TEST_F(TrainCommandTest, UnknownKeyStopsBeforeAnythingStarts) {
  write_config("  stpes: 3");
  expect_refused(kiln(""));
  EXPECT_TRUE(contains(output_, "x.yaml:13"));
  EXPECT_TRUE(contains(output_, "train.stpes is not a known key (did you mean train.steps?)"));
}

TEST_F(TrainCommandTest, WrongTypeStopsBeforeAnythingStarts) {
  write_config("  eval_batch: lots");
  expect_refused(kiln(""));
  EXPECT_TRUE(contains(output_, "x.yaml:13"));
  EXPECT_TRUE(contains(output_, "train.eval_batch = 'lots' has the wrong type"));
}

TEST_F(TrainCommandTest, OutOfRangeStopsBeforeAnythingStarts) {
  write_config("  max_skips: -1");
  expect_refused(kiln(""));
  EXPECT_TRUE(contains(output_, "x.yaml:13"));
  EXPECT_TRUE(contains(output_, "train.max_skips = -1 is out of range"));
}

TEST_F(TrainCommandTest, BadSetStopsBeforeAnythingStarts) {
  write_config();
  expect_refused(kiln("--set train.steps=abc"));
  EXPECT_TRUE(contains(output_, "--set train.steps=abc: train.steps = 'abc' has the wrong type"));
  expect_refused(kiln("--set train.steps"));
  EXPECT_TRUE(contains(output_, "is not of the form section.key=value"));
}

TEST_F(TrainCommandTest, ModelKeyOfAnotherModelStopsBeforeAnythingStarts) {
  write_config();
  expect_refused(kiln("--set model.channels=[8]"));
  EXPECT_TRUE(contains(output_, "model.channels is not a parameter of model 'mlp'"));
}

TEST_F(TrainCommandTest, GlobalBatchNotDivisibleByMicroBatchStopsBeforeAnythingStarts) {
  write_config();
  expect_refused(kiln("--set train.global_batch=40 --set train.micro_batch=16"));
  EXPECT_TRUE(contains(output_,
                       "train.global_batch (--set train.global_batch=40) = 40 is not a "
                       "multiple of train.micro_batch (--set train.micro_batch=16) = 16"));
}

// The printed table names each key's value and where it came from.
TEST_F(TrainCommandTest, OverridePrecedenceIsCliThenEnvThenYamlThenDefault) {
  write_config();
  ASSERT_EQ(kiln("--print-config --set train.steps=30",
                 "KILN_SET='train.steps=20;train.eval_every=4;train.max_skips=3'"),
            0)
      << output_;
  auto row = [&](const std::string& key) {
    std::istringstream in(output_);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("  " + key + " ", 0) == 0) return line;
    }
    return std::string("(no row for " + key + ")");
  };
  EXPECT_TRUE(contains(row("train.steps"), "30"));
  EXPECT_TRUE(contains(row("train.steps"), "--set train.steps=30"));              // CLI over env
  EXPECT_TRUE(contains(row("train.eval_every"), "KILN_SET train.eval_every=4"));  // env over YAML
  EXPECT_TRUE(contains(row("train.max_skips"), "KILN_SET train.max_skips=3"));  // env over default
  EXPECT_TRUE(contains(row("train.micro_batch"), "x.yaml:9"));                  // YAML over default
  EXPECT_TRUE(contains(row("train.eval_batch"), "256"));
  EXPECT_TRUE(contains(row("train.eval_batch"), "default"));
  EXPECT_FALSE(exists(metrics_path()));
}

TEST_F(TrainCommandTest, MissingDatasetNamesThePackage) {
  TempDir empty;
  write_config();
  expect_refused(kiln("--set data.path=" + empty.path()));
  EXPECT_TRUE(contains(output_, "dataset-fashion-mnist"));
  EXPECT_TRUE(contains(output_, empty.path() + "/train-images-idx3-ubyte.gz is missing"));
  EXPECT_TRUE(contains(output_, "data.path"));
}

TEST_F(TrainCommandTest, NonFiniteLossStopsNamingTheStep) {
  if (!dataset_present()) GTEST_SKIP() << kDataset << " is absent (package dataset-fashion-mnist)";
  write_config();
  EXPECT_NE(kiln("", "KILN_DEBUG_NAN_AT_STEP=3"), 0) << output_;
  EXPECT_TRUE(contains(output_, "non-finite loss or gradient at step 3 "));
  EXPECT_TRUE(contains(output_, "train.on_nonfinite"));
  EXPECT_FALSE(contains(output_, "done:")) << "the run went on";
}

TEST_F(TrainCommandTest, NonFiniteLossIsSkippedAndCounted) {
  if (!dataset_present()) GTEST_SKIP() << kDataset << " is absent (package dataset-fashion-mnist)";
  write_config();
  ASSERT_EQ(kiln("--set train.on_nonfinite=skip", "KILN_DEBUG_NAN_AT_STEP=3"), 0) << output_;
  EXPECT_TRUE(contains(output_, "step 3: non-finite loss or gradient"));
  EXPECT_TRUE(contains(output_, "step skipped (1 skipped so far)"));
  EXPECT_TRUE(contains(output_, "done: 6 steps"));
  EXPECT_TRUE(contains(output_, "skipped steps 1"));

  // One record per step (log_every 1), then the final evaluation.
  std::vector<nlohmann::json> m = metrics();
  ASSERT_EQ(m.size(), 7u) << output_;
  for (int step = 1; step <= 6; ++step) {
    const nlohmann::json& r = m[step - 1];
    EXPECT_EQ(r["step"], step);
    EXPECT_EQ(r["skipped"], step < 3 ? 0 : 1) << r.dump();
    if (step == 3)
      EXPECT_TRUE(r["loss"].is_null()) << "the skipped step has no loss";
    else
      EXPECT_TRUE(r["loss"].is_number()) << r.dump();
  }
  EXPECT_EQ(m[6]["final"], true);
  EXPECT_GT(m[6]["eval_accuracy"].get<double>(), 0.0);
}

}  // namespace
}  // namespace kiln::test
