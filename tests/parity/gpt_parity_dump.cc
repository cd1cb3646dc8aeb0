// Test-only driver for the PyTorch parity test (gpt_parity.py): builds a tiny GPT exactly as
// `kiln train` does and writes, as safetensors files in OUT_DIR,
//   init.safetensors   the initial weights (the PyTorch model loads them),
//   step0.safetensors  one batch (x, y), its logits and mean loss, and every parameter's
//                      gradient under "grad.<name>",
//   train.safetensors  50 batches and, per AdamW step taken as the trainer takes it (global
//                      gradient-norm clipping, warmup + cosine schedule), the loss and the lr.
// Usage: kiln_gpt_parity OUT_DIR
#include <cmath>
#include <cstdio>

#include "core/checkpoint/safetensors.h"
#include "core/config.h"
#include "core/device.h"
#include "core/rng.h"
#include "models/registry.h"
#include "optim/optimizer.h"

namespace kiln {
namespace {

constexpr int64_t kSteps = 50, kBatch = 4;

const char* kConfig = R"(
model: {name: gpt, n_layer: 2, n_head: 2, n_embd: 32, seq_len: 16, vocab: 256, dropout: 0.0}
train: {steps: 50, global_batch: 4, micro_batch: 4, seed: 3}
optim: {name: adamw, lr: 3.0e-3, beta1: 0.9, beta2: 0.95, eps: 1.0e-8, weight_decay: 0.1,
        warmup_steps: 5, schedule: cosine, min_lr_ratio: 0.1, clip_norm: 1.0}
)";

// Windows of a short English text at random offsets: learnable, so the loss falls.
std::vector<int32_t> make_batches(int64_t steps, int64_t B, int64_t T) {
  const std::string text =
      "In the beginning God created the heaven and the earth. And the earth was without form, "
      "and void; and darkness was upon the face of the deep. And the Spirit of God moved upon "
      "the face of the waters. And God said, Let there be light: and there was light. ";
  Rng rng(11, 0);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < steps * B; ++i) {
    const uint64_t start = rng.below(text.size() - static_cast<uint64_t>(T) - 1);
    for (int64_t t = 0; t <= T; ++t) out.push_back(static_cast<unsigned char>(text[start + t]));
  }
  return out;
}

MicroBatch batch_at(const std::vector<int32_t>& all, int64_t step, int64_t B, int64_t T) {
  std::vector<int32_t> x, y;
  for (int64_t b = 0; b < B; ++b) {
    const int32_t* w = all.data() + (step * B + b) * (T + 1);
    x.insert(x.end(), w, w + T);
    y.insert(y.end(), w + 1, w + T + 1);
  }
  MicroBatch m;
  m.x = Tensor::from_vector(x, Shape{B, T});
  m.y = Tensor::from_vector(y, Shape{B, T});
  m.first_sample = step * B;
  return m;
}

void write_params(const std::string& path, const ParamStore& store, const std::string& prefix,
                  bool grads, std::vector<SafeTensor> extra) {
  for (size_t i = 0; i < store.infos().size(); ++i) {
    const ParamInfo& info = store.infos()[i];
    const Tensor t = grads ? store.grad(static_cast<int>(i)) : store.param(static_cast<int>(i));
    extra.push_back(SafeTensor{prefix + info.name, DType::f32, info.shape, t.raw()});
  }
  write_safetensors(path, extra, {{"format", "pt"}});
}

int run(const std::string& out) {
  set_cpu_threads(default_cpu_threads(1));
  Config cfg = load_config_text(kConfig, "(parity)", {});
  const int64_t T = cfg.model.seq_len;
  std::unique_ptr<Model> model = create_model(cfg, ModelSpec{Shape{T}, cfg.model.vocab});
  model->build(cpu_device(), DType::f32, static_cast<uint64_t>(cfg.train.seed));
  ParamStore& store = model->params();
  write_params(out + "/init.safetensors", store, "", false, {});

  const std::vector<int32_t> data = make_batches(kSteps, kBatch, T);
  const float grad_scale = 1.0f / static_cast<float>(kBatch);
  std::unique_ptr<Optimizer> opt = create_optimizer(cfg.optim, store);
  std::vector<double> losses, lrs;
  for (int64_t step = 0; step < kSteps; ++step) {
    MicroBatch b = batch_at(data, step, kBatch, T);
    store.grads().zero();
    ForwardContext ctx{true, static_cast<uint64_t>(cfg.train.seed), step, b.first_sample};
    const LossSums s = model->forward_backward(b, ctx, grad_scale);
    losses.push_back(s.loss / static_cast<double>(s.count));
    if (step == 0) {
      const double mean = losses[0];
      const Tensor& logits = model->logits();
      write_params(out + "/step0.safetensors", store, "grad.", true,
                   {{"x", DType::i32, b.x.shape(), b.x.raw()},
                    {"y", DType::i32, b.y.shape(), b.y.raw()},
                    {"logits", DType::f32, logits.shape(), logits.raw()},
                    {"loss", DType::f64, Shape{}, &mean}});
    }
    const double norm = std::sqrt(cpu_device().ops().sum_squares(store.grads()));
    const double lr = learning_rate(cfg.optim, step, kSteps);
    lrs.push_back(lr);
    opt->step(store, lr, static_cast<float>(clip_factor(norm, cfg.optim.clip_norm)));
  }
  write_safetensors(out + "/train.safetensors",
                    {{"batches", DType::i32, Shape{kSteps, kBatch, T + 1}, data.data()},
                     {"loss", DType::f64, Shape{kSteps}, losses.data()},
                     {"lr", DType::f64, Shape{kSteps}, lrs.data()}},
                    {{"beta1", fmt::format("{}", cfg.optim.beta1)},
                     {"beta2", fmt::format("{}", cfg.optim.beta2)},
                     {"eps", fmt::format("{}", cfg.optim.eps)},
                     {"weight_decay", fmt::format("{}", cfg.optim.weight_decay)},
                     {"clip_norm", fmt::format("{}", cfg.optim.clip_norm)},
                     {"n_layer", std::to_string(cfg.model.n_layer)},
                     {"n_head", std::to_string(cfg.model.n_head)},
                     {"n_embd", std::to_string(cfg.model.n_embd)},
                     {"seq_len", std::to_string(T)},
                     {"vocab", std::to_string(cfg.model.vocab)}});
  std::printf("kiln: wrote init, step0 and train dumps to %s (first loss %.6f, last %.6f)\n",
              out.c_str(), losses.front(), losses.back());
  return 0;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    return kiln::run(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln_gpt_parity: %s\n", e.what());
    return 1;
  }
}
