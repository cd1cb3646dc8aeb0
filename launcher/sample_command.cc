// `kiln sample --checkpoint DIR --prompt TEXT`: generates text from a trained language model,
// one byte-level token at a time (temperature, top-k, seed). The context is the last seq_len
// tokens; every step runs the whole context (no key/value cache: a few hundred tokens take
// seconds on a CPU).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/device.h"
#include "core/env.h"
#include "core/log.h"
#include "core/rng.h"
#include "launcher/commands.h"
#include "launcher/model_weights.h"
#include "models/registry.h"

namespace kiln {

namespace {

struct SampleFlags {
  std::string checkpoint, config, prompt = "\n";
  std::vector<std::string> set;
  int64_t tokens = 200;
  double temperature = 0.8;
  int64_t top_k = 0;
  uint64_t seed = 1;
};

// Draws the next token from the logits of one position.
int32_t pick(const float* logits, int64_t vocab, const SampleFlags& f, Rng& rng) {
  if (f.temperature <= 0)
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  int64_t k = f.top_k > 0 ? std::min(f.top_k, vocab) : vocab;
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const double top = logits[order[0]];
  std::vector<double> p(static_cast<size_t>(k));
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) {
    p[i] = std::exp((logits[order[i]] - top) / f.temperature);
    sum += p[i];
  }
  double u = rng.uniform() * sum;
  for (int64_t i = 0; i < k; ++i) {
    u -= p[i];
    if (u <= 0) return order[i];
  }
  return order[k - 1];
}

int run_sample(const SampleFlags& f) {
  const std::string dir = resolve_checkpoint_dir(f.checkpoint);
  Config cfg = f.config.empty() ? load_checkpoint_config(dir, f.set) : load_config(f.config, f.set);
  KILN_CHECK(cfg.model.name == "gpt",
             "kiln sample needs a language model; the config names "
             "model.name = {}",
             cfg.model.name);
  int threads = static_cast<int>(cfg.train.threads);
  if (threads == 0) threads = static_cast<int>(env::get_int("KILN_NUM_THREADS"));
  set_cpu_threads(threads > 0 ? threads : default_cpu_threads(1));

  const int64_t T = cfg.model.seq_len, V = cfg.model.vocab;
  std::unique_ptr<Model> model = create_model(cfg, ModelSpec{Shape{T}, V});
  model->build(cpu_device(), DType::f32, 0);
  load_model_weights(dir + "/model.safetensors", *model);

  std::vector<int32_t> text;
  for (unsigned char c : f.prompt) text.push_back(c);
  KILN_CHECK(!text.empty(), "--prompt is empty: give at least one character");
  for (int32_t t : text) KILN_CHECK(t < V, "prompt byte {} is outside the vocabulary of {}", t, V);
  std::fwrite(f.prompt.data(), 1, f.prompt.size(), stdout);
  std::fflush(stdout);

  Rng rng(f.seed, 0x5a3b1e00ull);
  for (int64_t i = 0; i < f.tokens; ++i) {
    const int64_t n = std::min<int64_t>(T, static_cast<int64_t>(text.size()));
    std::vector<int32_t> ctx(text.end() - n, text.end());
    MicroBatch batch;
    batch.x = Tensor::from_vector(ctx, Shape{1, n});
    batch.y = Tensor::zeros(Shape{1, n}, DType::i32, cpu_device());
    model->evaluate(batch);
    const Tensor& logits = model->logits();  // (1, n, V)
    const int32_t next = pick(logits.data<float>() + (n - 1) * V, V, f, rng);
    text.push_back(next);
    const unsigned char byte = static_cast<unsigned char>(next);
    std::fwrite(&byte, 1, 1, stdout);
    std::fflush(stdout);
  }
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace

CommandRunner add_sample_command(CLI::App& app) {
  auto flags = std::make_shared<SampleFlags>();
  CLI::App* cmd = app.add_subcommand("sample", "Generate text from a trained language model");
  cmd->add_option(
         "--checkpoint", flags->checkpoint,
         "a checkpoint (step-N folder), or a checkpoint.dir: its newest checkpoint that verifies")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("-c,--config", flags->config, "the run's YAML config, when the folder holds none")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", flags->set, "override a config key (repeatable)")
      ->allow_extra_args(false);  // one key=value per --set: a following -- ends the flags
  cmd->add_option("-p,--prompt", flags->prompt, "text to continue (default: a newline)");
  cmd->add_option("-n,--tokens", flags->tokens, "tokens (bytes) to generate")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("-t,--temperature", flags->temperature,
                  "softmax temperature; 0 = always the most likely token")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("-k,--top-k", flags->top_k, "sample among the k most likely tokens (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-s,--seed", flags->seed, "seed of the sampling")->capture_default_str();
  return [flags] { return run_sample(*flags); };
}

}  // namespace kiln
