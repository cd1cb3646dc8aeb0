// Which config changes a resume accepts: shape-changing keys are refused by name, others pass.
#include "core/checkpoint/config_compat.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

Config mlp() {
  return load_config_text("model: {name: mlp, hidden: [32, 16]}\ntrain: {steps: 60}\n", "test", {});
}

TEST(ConfigCompat, SameConfigHasNoChanges) {
  const Config c = mlp();
  const ConfigDiff d = diff_config_for_resume(config_to_json(c), c);
  EXPECT_TRUE(d.refused.empty());
  EXPECT_TRUE(d.allowed.empty());
}

TEST(ConfigCompat, SafeChangesAreAllowedAndListed) {
  const Config before = mlp();
  Config after = before;
  after.optim.lr = 5e-4;
  after.train.steps = 100;
  after.metrics.log_every = 3;
  after.model.dropout = 0.2;
  after.model.n_layer = 12;  // a GPT key: does not describe an MLP
  const ConfigDiff d = diff_config_for_resume(config_to_json(before), after);
  EXPECT_TRUE(d.refused.empty());
  std::vector<std::string> keys;
  for (const ConfigChange& c : d.allowed) keys.push_back(c.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"model.dropout", "train.steps", "optim.lr",
                                            "metrics.log_every"}));
  EXPECT_EQ(d.allowed[1].before, "60");
  EXPECT_EQ(d.allowed[1].after, "100");
}

TEST(ConfigCompat, ShapeChangesAreRefusedByName) {
  const Config before = mlp();
  Config after = before;
  after.model.hidden = {32, 17};
  after.optim.name = "sgd";
  after.optim.lr = 0.1;
  const ConfigDiff d = diff_config_for_resume(config_to_json(before), after);
  ASSERT_EQ(d.refused.size(), 2u);
  EXPECT_EQ(d.refused[0].key, "model.hidden");
  EXPECT_EQ(d.refused[0].before, "[32,16]");
  EXPECT_EQ(d.refused[0].after, "[32,17]");
  EXPECT_EQ(d.refused[1].key, "optim.name");
  ASSERT_EQ(d.allowed.size(), 1u);
  EXPECT_EQ(d.allowed[0].key, "optim.lr");
}

}  // namespace
}  // namespace kiln
