// The run configuration as plain structs (DESIGN decision 11). Loaded by config_yaml.cc, the only
// file that knows yaml-cpp; precedence --set > KILN_SET > YAML > default. Every key is declared
// once in config_schema.cc with its type, range and help; unknown keys, wrong types and
// out-of-range values are errors naming the key path and where it was set.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln {

struct ModelConfig {
  std::string name = "cnn";
  std::vector<int64_t> hidden = {256, 256};  // mlp: hidden widths
  std::vector<int64_t> channels = {32, 64};  // cnn: conv channels, one conv+pool block each
  int64_t kernel = 3;                        // cnn: conv kernel size
  int64_t fc = 128;                          // cnn: width of the hidden fully connected layer
  double dropout = 0.0;                      // dropout probability
  int64_t n_layer = 4;                       // gpt
  int64_t n_head = 4;
  int64_t n_embd = 128;
  int64_t seq_len = 128;
  int64_t vocab = 256;
};

struct DataConfig {
  std::string name = "fashion_mnist";
  std::string path = "/usr/share/datasets/fashion-mnist";
  int64_t seed = 1;
  double val_fraction = 0.05;  // text: share of the corpus held out for validation
};

struct TrainConfig {
  int64_t steps = 2000;
  int64_t global_batch = 64;
  int64_t micro_batch = 64;
  int64_t eval_every = 500;
  int64_t eval_batch = 256;
  int64_t eval_samples = 0;  // evaluate on the first N samples of the evaluation set; 0 = all
  std::string device = "auto";
  std::string precision = "fp32";
  int64_t seed = 1;
  std::string on_nonfinite = "stop";  // stop | skip
  int64_t max_skips = 10;             // with skip: stop after this many skipped steps in a row
  int64_t threads = 0;                // CPU threads per rank; 0 = cores / local ranks
};

struct OptimConfig {
  std::string name = "adamw";
  double lr = 1e-3;
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double momentum = 0.9;
  bool nesterov = false;
  int64_t warmup_steps = 0;
  std::string schedule = "cosine";  // cosine | linear | constant
  double min_lr_ratio = 0.0;
  double clip_norm = 0.0;  // 0 = no clipping
};

struct CommConfig {
  std::string backend = "auto";  // auto | mpi | nccl
  double bucket_mb = 25.0;
  double first_bucket_mb = 1.0;
  double timeout_s = 300.0;
  bool overlap = true;
  std::string grad_dtype = "fp32";  // fp32 | bf16: the dtype gradients are reduced in
};

struct CheckpointConfig {
  std::string dir;
  int64_t every_steps = 0;
  double every_minutes = 0.0;
  int64_t keep_last = 3;
  int64_t keep_every = 0;
};

struct MetricsConfig {
  std::string path;
  int64_t log_every = 10;
};

// A timeline of a window of steps, one Chrome trace file per rank (kiln trace merge joins them).
struct TraceConfig {
  std::string dir;         // empty = no tracing
  int64_t start_step = 1;  // first traced step, counted from 1 as in the logs
  int64_t steps = 5;       // steps traced
};

struct CoordinatorConfig {
  std::string address;
  double heartbeat_s = 1.0;
  std::string token_file;
  std::string job;
  int64_t generation = -1;  // -1: the coordinator picks; `kiln launch` sets it
  std::string tls_ca;       // PEM: use TLS, trusting this CA
  std::string tls_cert;     // PEM: client certificate for mutual TLS
  std::string tls_key;
  int64_t metrics_queue = 4096;  // metric points held while the coordinator is unreachable
};

struct Config {
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  OptimConfig optim;
  CommConfig comm;
  CheckpointConfig checkpoint;
  MetricsConfig metrics;
  TraceConfig trace;
  CoordinatorConfig coordinator;

  // Where each key got its value: "configs/x.yaml:12", "--set", "KILN_SET"; absent = default.
  std::map<std::string, std::string> origin;
  std::string source;  // the YAML file, or "(embedded default)"

  // "train.steps (configs/x.yaml:12)" or "train.steps (default)": for error messages.
  std::string where(const std::string& key) const;
};

// One declared key. Built on demand over a Config so that loading, printing and hashing all walk
// the same list.
struct ConfigField {
  enum class Kind { kInt, kDouble, kBool, kString, kIntList };
  std::string path;  // "train.steps"
  Kind kind;
  void* ptr;
  double min = 0, max = 0;  // numbers and list elements; ignored when min > max
  bool min_exclusive = false;
  std::vector<std::string> choices;  // strings: allowed values, empty = any
  std::vector<std::string> models;   // model.* keys: the models that take them, empty = all
  std::string help;
};
std::vector<ConfigField> config_fields(Config& c);
std::vector<std::string> config_sections();

// Loads `path` (empty: the embedded default, configs/cnn_fashion.yaml), applies KILN_SET and then
// `overrides` ("a.b=c"), validates, and returns the result. Throws kiln::Error naming the key.
Config load_config(const std::string& path, const std::vector<std::string>& overrides);
// The same from YAML text already in memory (tests, embedded default).
Config load_config_text(const std::string& yaml, const std::string& source,
                        const std::vector<std::string>& overrides);
// The embedded default configuration's YAML text.
const std::string& embedded_default_config();

// Checks across keys (batch divisibility, schedule ranges). Called by the loaders.
void validate_config(const Config& c);

// Canonical JSON of every key (sorted), its 64-bit hash as 16 hex digits, and a table for people.
std::string config_to_json(const Config& c);
std::string config_hash(const Config& c);
std::string config_table(const Config& c);

}  // namespace kiln
