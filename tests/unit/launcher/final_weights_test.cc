// The stopgap final weights: the resolved config survives YAML and trainer.json round trips
// (same hash), weights come back bit for bit into a fresh model, and a file written for
// another shape is refused naming the tensor.
#include "launcher/final_weights.h"

#include <fstream>

#include "models/registry.h"
#include "unit/test_util.h"

namespace kiln {
namespace {

const char* kYaml = R"(
model: {name: gpt, n_layer: 1, n_head: 2, n_embd: 8, seq_len: 8, vocab: 256, dropout: 0.1}
data: {name: text, path: "some dir/with space", seed: 4}
train: {steps: 7, global_batch: 4, micro_batch: 2, eval_samples: 9}
optim: {lr: 2.5e-4, eps: 1.0e-9, beta2: 0.95}
)";

std::unique_ptr<Model> build(const Config& cfg, uint64_t seed) {
  std::unique_ptr<Model> m = create_model(cfg, ModelSpec{Shape{cfg.model.seq_len}, 256});
  m->build(cpu_device(), DType::f32, seed);
  return m;
}

TEST(FinalWeights, ConfigRoundTripsThroughYaml) {
  Config cfg = load_config_text(kYaml, "test", {});
  Config back = load_config_text(config_to_yaml(cfg), "back", {});
  EXPECT_EQ(config_hash(back), config_hash(cfg));
  EXPECT_EQ(back.data.path, "some dir/with space");
  EXPECT_EQ(back.optim.eps, 1e-9);
}

TEST(FinalWeights, WeightsComeBackIntoAFreshModel) {
  test::TempDir dir;
  Config cfg = load_config_text(kYaml, "test", {});
  cfg.checkpoint.dir = dir.path();
  std::unique_ptr<Model> a = build(cfg, 1), b = build(cfg, 2);
  ASSERT_NE(test::as_doubles(a->params().params()), test::as_doubles(b->params().params()));
  const std::string out = write_final_weights(cfg, *a);
  EXPECT_EQ(out, dir.path() + "/final");
  load_model_weights(out + "/model.safetensors", *b);
  EXPECT_EQ(test::as_doubles(a->params().params()), test::as_doubles(b->params().params()));
  Config again = load_checkpoint_config(out, {});
  EXPECT_EQ(config_hash(again), config_hash(cfg));

  Config wider = cfg;
  wider.model.n_embd = 16;
  std::unique_ptr<Model> c = build(wider, 1);
  try {
    load_model_weights(out + "/model.safetensors", *c);
    FAIL() << "weights of another shape were loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'wte'"), std::string::npos) << e.what();
  }
}

TEST(FinalWeights, ConfigIsReadFromTrainerJson) {
  test::TempDir dir;
  Config cfg = load_config_text(kYaml, "test", {});
  std::ofstream(dir.path() + "/trainer.json")
      << "{\"step\": 7, \"config\": " << config_to_json(cfg) << "}";
  Config back = load_checkpoint_config(dir.path(), {"train.steps=9"});
  EXPECT_EQ(back.model.n_embd, 8);
  EXPECT_EQ(back.train.steps, 9);  // overrides still apply
  EXPECT_THROW(load_checkpoint_config(dir.path() + "/missing", {}), Error);
}

}  // namespace
}  // namespace kiln
