// Config loading: unknown keys, wrong types and out-of-range values are errors naming the key
// path and the line; --set and KILN_SET overrides and their precedence (CLI > env > YAML >
// default); model keys of another model; checks across keys.
#include "core/config.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_util.h"

namespace kiln::test {
namespace {

const char* kSource = "configs/x.yaml";

// Loads YAML text with KILN_SET unset unless a test sets it.
Config load(const std::string& yaml, const std::vector<std::string>& set = {}) {
  return load_config_text(yaml, kSource, set);
}

std::string load_error(const std::string& yaml, const std::vector<std::string>& set = {}) {
  return error_message([&] { load(yaml, set); });
}

class ConfigTest : public ::testing::Test {
 protected:
  ScopedEnv no_env_{"KILN_SET", std::nullopt};
};

// Line numbers below count from 1 at "model:".
const char* kMlp =
    "model:\n"              // 1
    "  name: mlp\n"         // 2
    "  hidden: [16, 8]\n"   // 3
    "train:\n"              // 4
    "  steps: 10\n"         // 5
    "  global_batch: 32\n"  // 6
    "  micro_batch: 16\n";  // 7

TEST_F(ConfigTest, ReadsValuesAndRecordsWhereEachCameFrom) {
  Config c = load(kMlp);
  EXPECT_EQ(c.model.name, "mlp");
  EXPECT_EQ(c.model.hidden, (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(c.train.steps, 10);
  EXPECT_EQ(c.train.global_batch, 32);
  EXPECT_EQ(c.train.eval_every, 500);  // the default
  EXPECT_EQ(c.where("train.steps"), "train.steps (configs/x.yaml:5)");
  EXPECT_EQ(c.where("train.eval_every"), "train.eval_every (default)");
}

TEST_F(ConfigTest, UnknownKeyNamesPathLineAndClosestKey) {
  std::string m = load_error(std::string(kMlp) + "  stpes: 3\n");  // line 8
  EXPECT_TRUE(contains(m, "configs/x.yaml:8"));
  EXPECT_TRUE(contains(m, "train.stpes is not a known key"));
  EXPECT_TRUE(contains(m, "did you mean train.steps?"));
}

TEST_F(ConfigTest, UnknownSectionNamesItsLine) {
  std::string m = load_error(std::string(kMlp) + "trian:\n  steps: 3\n");  // line 8
  EXPECT_TRUE(contains(m, "configs/x.yaml:8"));
  EXPECT_TRUE(contains(m, "'trian' is not a known section"));
}

TEST_F(ConfigTest, WrongTypeNamesPathAndLine) {
  std::string m = load_error("train:\n  global_batch: 32\n  steps: ten\n");
  EXPECT_TRUE(contains(m, "configs/x.yaml:3"));
  EXPECT_TRUE(contains(m, "train.steps = 'ten' has the wrong type: expected an integer"));

  m = load_error("optim:\n  nesterov: maybe\n");
  EXPECT_TRUE(contains(m, "configs/x.yaml:2"));
  EXPECT_TRUE(contains(m, "optim.nesterov = 'maybe' has the wrong type"));

  m = load_error("model:\n  name: mlp\n  hidden: 16\n");
  EXPECT_TRUE(contains(m, "configs/x.yaml:3"));
  EXPECT_TRUE(contains(m, "model.hidden has the wrong type: expected a list of integers"));

  m = load_error("train:\n  steps: 2.5\n");
  EXPECT_TRUE(contains(m, "train.steps = '2.5' has the wrong type"));
}

TEST_F(ConfigTest, OutOfRangeNamesPathLineAndRange) {
  std::string m = load_error("optim:\n  name: sgd\n  lr: -0.5\n");
  EXPECT_TRUE(contains(m, "configs/x.yaml:3"));
  EXPECT_TRUE(contains(m, "optim.lr = -0.5 is out of range: expected a value in [0, 1000]"));

  m = load_error("train:\n  steps: 0\n");
  EXPECT_TRUE(contains(m, "configs/x.yaml:2"));
  EXPECT_TRUE(contains(m, "train.steps = 0 is out of range: expected a value >= 1"));

  m = load_error("model:\n  name: mlp\n  hidden: [16, 0]\n");
  EXPECT_TRUE(contains(m, "configs/x.yaml:3"));
  EXPECT_TRUE(contains(m, "model.hidden = 0 is out of range"));

  m = load_error("optim:\n  eps: 0\n");  // the lower bound is exclusive
  EXPECT_TRUE(contains(m, "optim.eps = 0 is out of range: expected a value in (0, 1]"));

  m = load_error("train:\n  device: gpu\n");
  EXPECT_TRUE(contains(m, "configs/x.yaml:2"));
  EXPECT_TRUE(contains(m, "train.device = 'gpu' is not allowed: expected one of auto, cpu, cuda"));
}

TEST_F(ConfigTest, InvalidYamlNamesTheLine) {
  std::string m = load_error("train:\n  steps: [1\n  micro_batch: 4\n");
  EXPECT_TRUE(contains(m, "configs/x.yaml:"));
  EXPECT_TRUE(contains(m, "invalid YAML"));
}

TEST_F(ConfigTest, PrecedenceIsCliThenEnvThenYamlThenDefault) {
  const std::string yaml = "train:\n  steps: 10\n  eval_every: 5\n  eval_batch: 7\n";
  {
    Config c = load(yaml);
    EXPECT_EQ(c.train.steps, 10);
    EXPECT_EQ(c.train.max_skips, 10);  // default
  }
  ScopedEnv env("KILN_SET", "train.steps=20; train.eval_every=6");
  {
    Config c = load(yaml);
    EXPECT_EQ(c.train.steps, 20);
    EXPECT_EQ(c.train.eval_every, 6);
    EXPECT_EQ(c.train.eval_batch, 7);  // YAML, not overridden
    EXPECT_EQ(c.where("train.steps"), "train.steps (KILN_SET train.steps=20)");
  }
  {
    Config c = load(yaml, {"train.steps=30", "train.max_skips=2"});
    EXPECT_EQ(c.train.steps, 30);      // CLI over env over YAML
    EXPECT_EQ(c.train.eval_every, 6);  // env over YAML
    EXPECT_EQ(c.train.eval_batch, 7);  // YAML over default
    EXPECT_EQ(c.train.max_skips, 2);   // CLI over default
    EXPECT_EQ(c.where("train.steps"), "train.steps (--set train.steps=30)");
  }
  // The last --set of a key wins.
  EXPECT_EQ(load(yaml, {"train.steps=30", "train.steps=40"}).train.steps, 40);
}

TEST_F(ConfigTest, SetTakesListsStringsAndEmptyValues) {
  Config c = load(kMlp, {"model.hidden=[4, 5, 6]", "metrics.path=", "optim.name=sgd"});
  EXPECT_EQ(c.model.hidden, (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(c.metrics.path, "");
  EXPECT_EQ(c.optim.name, "sgd");
}

TEST_F(ConfigTest, BadSetIsAnErrorNamingTheOverride) {
  std::string m = load_error(kMlp, {"train.steps"});
  EXPECT_TRUE(contains(m, "--set 'train.steps' is not of the form section.key=value"));

  m = load_error(kMlp, {"train.nope=1"});
  EXPECT_TRUE(contains(m, "--set train.nope=1"));
  EXPECT_TRUE(contains(m, "train.nope is not a known key"));

  m = load_error(kMlp, {"train.steps=abc"});
  EXPECT_TRUE(contains(m, "--set train.steps=abc"));
  EXPECT_TRUE(contains(m, "train.steps = 'abc' has the wrong type"));

  m = load_error(kMlp, {"optim.lr=-1"});
  EXPECT_TRUE(contains(m, "--set optim.lr=-1"));
  EXPECT_TRUE(contains(m, "out of range"));

  ScopedEnv env("KILN_SET", "train.steps=7;bogus");
  m = load_error(kMlp);
  EXPECT_TRUE(contains(m, "KILN_SET 'bogus' is not of the form section.key=value"));
}

// A bad value in the file is reported at its line even when an override replaces it.
TEST_F(ConfigTest, BadYamlValueIsReportedAtItsLineDespiteAnOverride) {
  std::string m = load_error("train:\n  steps: ten\n", {"train.steps=5"});
  EXPECT_TRUE(contains(m, "configs/x.yaml:2"));
  EXPECT_TRUE(contains(m, "train.steps = 'ten'"));
}

TEST_F(ConfigTest, ModelKeyOfAnotherModelIsAnError) {
  std::string m = load_error("model:\n  name: mlp\n  channels: [8]\n");
  EXPECT_TRUE(contains(m, "configs/x.yaml:3"));
  EXPECT_TRUE(contains(m, "model.channels is not a parameter of model 'mlp'"));
  EXPECT_TRUE(contains(m, "hidden"));  // the keys mlp does take

  m = load_error(kMlp, {"model.kernel=5"});
  EXPECT_TRUE(contains(m, "--set model.kernel=5"));
  EXPECT_TRUE(contains(m, "model.kernel is not a parameter of model 'mlp'"));

  // Switching the model by --set makes the file's mlp keys wrong.
  m = load_error(kMlp, {"model.name=cnn"});
  EXPECT_TRUE(contains(m, "model.hidden is not a parameter of model 'cnn'"));
}

TEST_F(ConfigTest, GlobalBatchMustBeAMultipleOfMicroBatch) {
  std::string m = load_error("train:\n  global_batch: 100\n  micro_batch: 16\n");
  EXPECT_TRUE(contains(m,
                       "train.global_batch (configs/x.yaml:2) = 100 is not a multiple of "
                       "train.micro_batch (configs/x.yaml:3) = 16"));
  m = load_error("train:\n  global_batch: 8\n  micro_batch: 16\n");
  EXPECT_TRUE(contains(m, "train.micro_batch (configs/x.yaml:3) = 16 is larger than"));
}

TEST_F(ConfigTest, ChecksAcrossKeys) {
  // A warmup longer than the run is allowed (short smoke runs of a long config): the rate
  // simply never reaches its peak.
  EXPECT_EQ(load("train:\n  steps: 5\noptim:\n  warmup_steps: 6\n").optim.warmup_steps, 6);
  EXPECT_TRUE(contains(load_error("model:\n  name: cnn\n  kernel: 4\n"), "must be odd"));
  EXPECT_TRUE(contains(load_error("checkpoint:\n  every_steps: 10\n"), "checkpoint.dir"));
}

TEST_F(ConfigTest, EmbeddedDefaultIsTheCnnExample) {
  Config c = load_config("", {});
  EXPECT_EQ(c.model.name, "cnn");
  EXPECT_EQ(c.model.channels, (std::vector<int64_t>{32, 64}));
  EXPECT_TRUE(contains(c.where("model.name"), "embedded:cnn_fashion.yaml:"));
}

TEST_F(ConfigTest, HashFollowsValuesNotOrigins) {
  Config a = load("train:\n  steps: 10\n");
  Config b = load("", {"train.steps=10"});
  Config c = load("train:\n  steps: 11\n");
  EXPECT_EQ(config_hash(a), config_hash(b));
  EXPECT_NE(config_hash(a), config_hash(c));
  EXPECT_EQ(config_hash(a).size(), 16u);
}

TEST_F(ConfigTest, TraceSectionIsOffByDefaultAndValidated) {
  const Config d = load(kMlp);
  EXPECT_TRUE(d.trace.dir.empty());
  EXPECT_EQ(d.trace.start_step, 1);
  EXPECT_EQ(d.trace.steps, 5);
  const Config c = load("trace:\n  dir: runs/t\n  start_step: 10\n  steps: 3\n");
  EXPECT_EQ(c.trace.dir, "runs/t");
  EXPECT_EQ(c.trace.start_step, 10);
  EXPECT_EQ(c.trace.steps, 3);
  EXPECT_NE(config_hash(c), config_hash(d));  // ranks agree on tracing at start-up
  std::string m = load_error("trace:\n  start_step: 0\n");
  EXPECT_TRUE(contains(m, "configs/x.yaml:2"));
  EXPECT_TRUE(contains(m, "trace.start_step = 0 is out of range"));
  m = load_error("trace:\n  window: 3\n");
  EXPECT_TRUE(contains(m, "trace.window is not a known key"));
}

}  // namespace
}  // namespace kiln::test
