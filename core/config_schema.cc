// Every configuration key, declared once: type, range, allowed values, help. Also the checks
// across keys, the canonical JSON form, its hash and the printed table.
#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/config.h"
#include "core/error.h"
#include "core/hash.h"

namespace kiln {

namespace {

using Kind = ConfigField::Kind;
constexpr double kInf = 1e300;

ConfigField num(std::string path, int64_t* p, double lo, double hi, std::string help) {
  return ConfigField{std::move(path), Kind::kInt, p, lo, hi, false, {}, {}, std::move(help)};
}
ConfigField num(std::string path, double* p, double lo, double hi, std::string help,
                bool lo_exclusive = false) {
  return ConfigField{std::move(path), Kind::kDouble, p, lo, hi, lo_exclusive, {}, {},
                     std::move(help)};
}
ConfigField flag(std::string path, bool* p, std::string help) {
  return ConfigField{std::move(path), Kind::kBool, p, 1, 0, false, {}, {}, std::move(help)};
}
ConfigField str(std::string path, std::string* p, std::vector<std::string> choices,
                std::string help) {
  return ConfigField{std::move(path), Kind::kString, p, 1, 0, false, std::move(choices), {},
                     std::move(help)};
}
ConfigField list(std::string path, std::vector<int64_t>* p, double lo, double hi,
                 std::string help) {
  return ConfigField{std::move(path), Kind::kIntList, p, lo, hi, false, {}, {}, std::move(help)};
}
ConfigField for_models(ConfigField f, std::vector<std::string> models) {
  f.models = std::move(models);
  return f;
}

}  // namespace

std::vector<std::string> config_sections() {
  return {"model",      "data",    "train", "optim",      "comm",
          "checkpoint", "metrics", "trace", "coordinator"};
}

std::vector<ConfigField> config_fields(Config& c) {
  ModelConfig& m = c.model;
  DataConfig& d = c.data;
  TrainConfig& t = c.train;
  OptimConfig& o = c.optim;
  CommConfig& k = c.comm;
  CheckpointConfig& ck = c.checkpoint;
  MetricsConfig& me = c.metrics;
  TraceConfig& tr = c.trace;
  CoordinatorConfig& co = c.coordinator;
  return {
      str("model.name", &m.name, {}, "registered model: mlp, cnn, gpt"),
      for_models(list("model.hidden", &m.hidden, 1, 1 << 20, "MLP hidden layer widths"),
                 {"mlp"}),
      for_models(list("model.channels", &m.channels, 1, 1 << 16,
                      "CNN channels, one conv(+ReLU+2x2 max-pool) block each"),
                 {"cnn"}),
      for_models(num("model.kernel", &m.kernel, 1, 15, "CNN convolution kernel size (odd)"),
                 {"cnn"}),
      for_models(num("model.fc", &m.fc, 1, 1 << 20, "CNN hidden fully connected width"),
                 {"cnn"}),
      num("model.dropout", &m.dropout, 0.0, 0.95, "dropout probability (0 = off)"),
      for_models(num("model.n_layer", &m.n_layer, 1, 256, "GPT blocks"), {"gpt"}),
      for_models(num("model.n_head", &m.n_head, 1, 256, "GPT attention heads"), {"gpt"}),
      for_models(num("model.n_embd", &m.n_embd, 1, 1 << 16, "GPT embedding width"), {"gpt"}),
      for_models(num("model.seq_len", &m.seq_len, 1, 1 << 16, "GPT context length"), {"gpt"}),
      for_models(num("model.vocab", &m.vocab, 2, 1 << 20, "GPT vocabulary size"), {"gpt"}),

      str("data.name", &d.name, {"fashion_mnist", "text"}, "dataset"),
      str("data.path", &d.path, {}, "dataset directory (IDX files, or token shards for text)"),
      num("data.seed", &d.seed, 0, 9.2e18, "seed of the global sample order"),
      num("data.val_fraction", &d.val_fraction, 0.0, 0.5,
          "text: share held out for validation (the default of kiln data prepare-text "
          "--val-fraction, which makes the split)",
          true),

      num("train.steps", &t.steps, 1, 1e15, "optimizer steps"),
      num("train.global_batch", &t.global_batch, 1, 1 << 24, "samples per optimizer step"),
      num("train.micro_batch", &t.micro_batch, 1, 1 << 24,
          "samples per forward/backward on one rank"),
      num("train.eval_every", &t.eval_every, 0, 1e15, "evaluate every N steps (0 = at the end)"),
      num("train.eval_batch", &t.eval_batch, 1, 1 << 20, "samples per evaluation batch"),
      num("train.eval_samples", &t.eval_samples, 0, 1e15,
          "evaluate on the first N samples of the evaluation set (0 = all)"),
      str("train.device", &t.device, {"auto", "cpu", "cuda"}, "where kernels run"),
      str("train.precision", &t.precision, {"fp32", "bf16", "fp16"}, "compute precision"),
      num("train.seed", &t.seed, 0, 9.2e18, "seed of initialisation and dropout"),
      str("train.on_nonfinite", &t.on_nonfinite, {"stop", "skip"},
          "a NaN/Inf loss or gradient stops the run, or skips the step"),
      num("train.max_skips", &t.max_skips, 0, 1e9,
          "with on_nonfinite: skip, stop after this many skipped steps in a row (0 = never)"),
      num("train.threads", &t.threads, 0, 4096, "CPU threads per rank (0 = cores / local ranks)"),

      str("optim.name", &o.name, {"adamw", "sgd"}, "optimizer"),
      num("optim.lr", &o.lr, 0.0, 1e3, "peak learning rate"),
      num("optim.weight_decay", &o.weight_decay, 0.0, 10.0, "weight decay (not on biases)"),
      num("optim.beta1", &o.beta1, 0.0, 0.999999, "AdamW first-moment decay"),
      num("optim.beta2", &o.beta2, 0.0, 0.99999999, "AdamW second-moment decay"),
      num("optim.eps", &o.eps, 0.0, 1.0, "AdamW epsilon", true),
      num("optim.momentum", &o.momentum, 0.0, 0.999999, "SGD momentum"),
      flag("optim.nesterov", &o.nesterov, "SGD Nesterov momentum"),
      num("optim.warmup_steps", &o.warmup_steps, 0, 1e15, "linear warmup steps"),
      str("optim.schedule", &o.schedule, {"cosine", "linear", "constant"},
          "decay after warmup"),
      num("optim.min_lr_ratio", &o.min_lr_ratio, 0.0, 1.0, "final lr as a share of the peak"),
      num("optim.clip_norm", &o.clip_norm, 0.0, 1e9, "global gradient-norm clip (0 = off)"),

      str("comm.backend", &k.backend, {"auto", "mpi", "nccl"}, "gradient all-reduce backend"),
      num("comm.bucket_mb", &k.bucket_mb, 0.0, 4096.0,
          "gradient bucket size in MiB; fractions give any size in bytes (0.25 = 256 KiB, "
          "rounded to whole bytes)", true),
      num("comm.first_bucket_mb", &k.first_bucket_mb, 0.0, 4096.0,
          "first bucket (the last layers, reduced first) in MiB; fractions as bucket_mb", true),
      num("comm.timeout_s", &k.timeout_s, 0.0, 86400.0, "collective deadline in seconds", true),
      flag("comm.overlap", &k.overlap, "all-reduce buckets during backward"),
      str("comm.grad_dtype", &k.grad_dtype, {"fp32", "bf16"},
          "dtype gradients are reduced in (bf16 halves the traffic; the sums land in f32)"),

      str("checkpoint.dir", &ck.dir, {}, "checkpoint directory (empty = no checkpoints)"),
      num("checkpoint.every_steps", &ck.every_steps, 0, 1e15, "save every N steps (0 = off)"),
      num("checkpoint.every_minutes", &ck.every_minutes, 0.0, 1e9,
          "save every N minutes (0 = off)"),
      num("checkpoint.keep_last", &ck.keep_last, 0, 1e9, "checkpoints kept (0 = all)"),
      num("checkpoint.keep_every", &ck.keep_every, 0, 1e15,
          "also keep every checkpoint whose step is a multiple of N (0 = off)"),

      str("metrics.path", &me.path, {}, "JSON-lines metrics file (empty = none)"),
      num("metrics.log_every", &me.log_every, 1, 1e15,
          "progress and metrics every N steps; with several ranks also a line naming the "
          "slowest rank and the spread of per-rank step work"),

      // A section of its own rather than metrics.*: a trace is a window of one run's timeline,
      // switched on to look at a few steps, not a series the run always reports.
      str("trace.dir", &tr.dir, {},
          "section trace: a timeline of a window of steps (forward, backward per layer, each "
          "bucket's all-reduce, waits, optimizer, checkpoint, data) as Chrome trace JSON, one "
          "rank-NNNNN.trace.json per rank in this directory, joined by `kiln trace merge DIR` "
          "(empty = off)"),
      num("trace.start_step", &tr.start_step, 1, 1e15,
          "first traced step, counted from 1 as in the logs"),
      num("trace.steps", &tr.steps, 1, 1e9, "number of steps traced"),

      str("coordinator.address", &co.address, {}, "host:port of kiln coordinator (empty = none)"),
      num("coordinator.heartbeat_s", &co.heartbeat_s, 0.0, 3600.0, "heartbeat period", true),
      str("coordinator.token_file", &co.token_file, {}, "file holding the job token"),
      str("coordinator.job", &co.job, {}, "job id at the coordinator"),
      num("coordinator.generation", &co.generation, -1, 9e15,
          "generation to register in (-1 = the coordinator picks; set by kiln launch)"),
      str("coordinator.tls_ca", &co.tls_ca, {},
          "PEM file of the CA that signed the coordinator's certificate (empty = plaintext)"),
      str("coordinator.tls_cert", &co.tls_cert, {}, "PEM client certificate for mutual TLS"),
      str("coordinator.tls_key", &co.tls_key, {}, "PEM key of coordinator.tls_cert"),
      num("coordinator.metrics_queue", &co.metrics_queue, 16, 1e7,
          "metric points kept while the coordinator is unreachable (oldest dropped first)"),
  };
}

std::string Config::where(const std::string& key) const {
  auto it = origin.find(key);
  return fmt::format("{} ({})", key, it == origin.end() ? "default" : it->second);
}

void validate_config(const Config& c) {
  const TrainConfig& t = c.train;
  KILN_CHECK(t.micro_batch <= t.global_batch,
             "{} = {} is larger than {} = {}: a micro-batch is part of one global batch",
             c.where("train.micro_batch"), t.micro_batch, c.where("train.global_batch"),
             t.global_batch);
  KILN_CHECK(t.global_batch % t.micro_batch == 0,
             "{} = {} is not a multiple of {} = {}: each step is a whole number of micro-batches",
             c.where("train.global_batch"), t.global_batch, c.where("train.micro_batch"),
             t.micro_batch);
  KILN_CHECK(c.comm.first_bucket_mb <= c.comm.bucket_mb,
             "{} = {} exceeds {} = {}", c.where("comm.first_bucket_mb"), c.comm.first_bucket_mb,
             c.where("comm.bucket_mb"), c.comm.bucket_mb);
  if (c.model.name == "cnn") {
    KILN_CHECK(c.model.kernel % 2 == 1, "{} = {} must be odd (the convolution keeps the image "
               "size with padding kernel/2)", c.where("model.kernel"), c.model.kernel);
  }
  if (c.model.name == "gpt") {
    KILN_CHECK(c.model.n_embd % c.model.n_head == 0, "{} = {} is not a multiple of {} = {}",
               c.where("model.n_embd"), c.model.n_embd, c.where("model.n_head"), c.model.n_head);
  }
  if (c.checkpoint.every_steps > 0 || c.checkpoint.every_minutes > 0) {
    KILN_CHECK(!c.checkpoint.dir.empty(), "{} is set but {} is empty: say where checkpoints go",
               c.checkpoint.every_steps > 0 ? c.where("checkpoint.every_steps")
                                            : c.where("checkpoint.every_minutes"),
               c.where("checkpoint.dir"));
  }
  const CoordinatorConfig& co = c.coordinator;
  if (!co.address.empty()) {
    KILN_CHECK(!co.job.empty(),
               "{} is set but {} is empty: name the job that the coordinator files this run under",
               c.where("coordinator.address"), c.where("coordinator.job"));
  }
  KILN_CHECK(co.tls_cert.empty() == co.tls_key.empty(),
             "{} and {} go together (a client certificate and its key)",
             c.where("coordinator.tls_cert"), c.where("coordinator.tls_key"));
  KILN_CHECK(co.tls_cert.empty() || !co.tls_ca.empty(),
             "{} is set but {} is empty: a client certificate needs TLS and the CA of the "
             "coordinator's certificate",
             c.where("coordinator.tls_cert"), c.where("coordinator.tls_ca"));
}

std::string config_to_json(const Config& cfg) {
  Config c = cfg;
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const ConfigField& f : config_fields(c)) {
    const size_t dot = f.path.find('.');
    auto& sec = j[f.path.substr(0, dot)];
    const std::string key = f.path.substr(dot + 1);
    switch (f.kind) {
      case ConfigField::Kind::kInt: sec[key] = *static_cast<int64_t*>(f.ptr); break;
      case ConfigField::Kind::kDouble: sec[key] = *static_cast<double*>(f.ptr); break;
      case ConfigField::Kind::kBool: sec[key] = *static_cast<bool*>(f.ptr); break;
      case ConfigField::Kind::kString: sec[key] = *static_cast<std::string*>(f.ptr); break;
      case ConfigField::Kind::kIntList:
        sec[key] = *static_cast<std::vector<int64_t>*>(f.ptr);
        break;
    }
  }
  return j.dump();
}

std::string config_hash(const Config& c) { return hash_hex(xxh3_64(config_to_json(c))); }

std::string config_table(const Config& cfg) {
  Config c = cfg;
  nlohmann::json j = nlohmann::json::parse(config_to_json(c));
  std::string out = fmt::format("config {} (hash {})\n", c.source, config_hash(c));
  out += fmt::format("  {:<28} {:<32} {}\n", "key", "value", "from");
  for (const ConfigField& f : config_fields(c)) {
    if (!f.models.empty() &&
        std::find(f.models.begin(), f.models.end(), c.model.name) == f.models.end()) {
      continue;  // a key of another model
    }
    const size_t dot = f.path.find('.');
    std::string value = j[f.path.substr(0, dot)][f.path.substr(dot + 1)].dump();
    if (f.kind == ConfigField::Kind::kString) value = *static_cast<std::string*>(f.ptr);
    auto it = c.origin.find(f.path);
    out += fmt::format("  {:<28} {:<32} {}\n", f.path, value.empty() ? "\"\"" : value,
                       it == c.origin.end() ? "default" : it->second);
  }
  return out;
}

}  // namespace kiln
