// model.safetensors written by a checkpoint loads in PyTorch 1.13 (tests/python/
// safetensors_logits.py rebuilds the model from torch.nn layers) and gives Kiln's logits.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/checkpoint/layout.h"
#include "core/checkpoint/safetensors.h"
#include "core/data/dataset.h"
#include "launcher/trainer.h"
#include "unit/test_util.h"

namespace kiln {
namespace {

bool have_torch() {
  return test::run_command("/usr/bin/python3 -c 'import torch, numpy'", nullptr) == 0;
}

// Trains `model_yaml` for 4 steps with a checkpoint at the end, and writes Kiln's logits for
// 16 test images next to it. Returns "MODEL.safetensors IO.safetensors".
std::string save_model_and_logits(const std::string& model_yaml, const std::string& tmp) {
  const std::string dir = tmp + "/ckpt";
  const Config cfg =
      load_config_text(model_yaml +
                           "train: {steps: 4, global_batch: 32, micro_batch: 32, eval_every: 0, "
                           "eval_samples: 32}\noptim: {lr: 0.01}\n",
                       "torch_parity_test", {"checkpoint.dir=" + dir});
  std::unique_ptr<Communicator> comm = make_self_communicator();
  Trainer t(cfg, *comm);
  t.run();  // trained weights, saved at the end as step-00000004

  DatasetPair data = open_datasets(cfg);
  const int64_t n = 16;
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) idx[i] = 100 + 37 * i;
  std::vector<int64_t> xs = data.eval->sample_shape().to_vector();
  xs.insert(xs.begin(), n);
  MicroBatch batch;
  batch.x = Tensor::empty(Shape(xs), DType::f32, cpu_device());
  batch.y = Tensor::empty(Shape{n}, DType::i32, cpu_device());
  data.eval->gather(idx.data(), n, batch.x, batch.y);
  t.model().evaluate(batch);
  const Tensor logits = t.model().logits().to(cpu_device());

  const std::string io = tmp + "/io.safetensors";
  write_safetensors(io,
                    {{"x", DType::f32, batch.x.shape(), batch.x.raw()},
                     {"logits", DType::f32, logits.shape(), logits.raw()}},
                    {{"config", config_to_json(cfg)}});
  const std::string model = dir + "/" + step_dir_name(4) + "/" + kModelFile;
  EXPECT_TRUE(std::filesystem::exists(model));
  return model + " " + io;
}

// One Python process for both models: importing torch is most of this test's time.
TEST(TorchParity, CnnAndMlpLogitsMatch) {
  if (!have_torch()) GTEST_SKIP() << "PyTorch is not importable by /usr/bin/python3";
  test::TempDir cnn, mlp;
  const std::string args =
      save_model_and_logits(
          "model: {name: cnn, channels: [4, 8], kernel: 3, fc: 16, dropout: 0.25}\n", cnn.path()) +
      " " +
      save_model_and_logits("model: {name: mlp, hidden: [24, 12], dropout: 0.1}\n", mlp.path());
  std::string out;
  const int rc = test::run_command(std::string("/usr/bin/python3 ") + KILN_SOURCE_DIR +
                                       "/tests/python/safetensors_logits.py " + args,
                                   &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("cnn: 8 tensors, 16 inputs"), std::string::npos) << out;
  EXPECT_NE(out.find("mlp: 6 tensors, 16 inputs"), std::string::npos) << out;
  std::printf("%s", out.c_str());
}

}  // namespace
}  // namespace kiln
