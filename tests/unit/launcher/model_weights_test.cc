// Reading a model back for sampling: the resolved config survives the trainer.json round trip
// (same hash), weights come back bit for bit into a fresh model, and a file written for another
// shape is refused naming the tensor.
#include "launcher/model_weights.h"

#include <fstream>

#include "core/checkpoint/safetensors.h"
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

TEST(ModelWeights, WeightsComeBackIntoAFreshModel) {
  test::TempDir dir;
  Config cfg = load_config_text(kYaml, "test", {});
  cfg.checkpoint.dir = dir.path();
  std::unique_ptr<Model> a = build(cfg, 1), b = build(cfg, 2);
  ASSERT_NE(test::as_doubles(a->params().params()), test::as_doubles(b->params().params()));
  const ParamStore& store = a->params();
  std::vector<SafeTensor> tensors;
  for (size_t i = 0; i < store.infos().size(); ++i) {
    const ParamInfo& info = store.infos()[i];
    tensors.push_back(SafeTensor{info.name, DType::f32, info.shape,
                                 store.param(static_cast<int>(i)).raw()});
  }
  const std::string out = dir.path();
  write_safetensors(out + "/model.safetensors", tensors, {});
  load_model_weights(out + "/model.safetensors", *b);
  EXPECT_EQ(test::as_doubles(a->params().params()), test::as_doubles(b->params().params()));

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

TEST(ModelWeights, ConfigIsReadFromTrainerJson) {
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
