// Same math at any world size (DESIGN decision 6): for the MLP and the CNN, with dropout on and
// a fixed global batch, training on this job's ranks ends with the same parameters and the same
// loss curve as a world of one (run in-process on every rank as the reference) after 20 steps.
// Run under mpirun with 2 and 4 ranks, this covers 1 vs 2 vs 4. Every rank must also hold
// bit-identical parameters. Data: a small plain-IDX subset of Fashion-MNIST, so that loading and
// the final evaluation stay quick.
#include <cmath>
#include <cstdio>
#include <fstream>

#include "core/config.h"
#include "core/data/idx.h"
#include "launcher/trainer.h"
#include "mpi_test.h"
#include "unit/test_util.h"

namespace kiln::test {
namespace {

const char* kSource = "/usr/share/datasets/fashion-mnist";

void write_idx(const std::string& path, const IdxArray& a, int64_t count) {
  std::ofstream out(path, std::ios::binary);
  const unsigned char magic[4] = {0, 0, 0x08, static_cast<unsigned char>(a.dims.size())};
  out.write(reinterpret_cast<const char*>(magic), 4);
  int64_t per = 1;
  for (size_t d = 0; d < a.dims.size(); ++d) {
    const uint32_t v = d == 0 ? static_cast<uint32_t>(count) : static_cast<uint32_t>(a.dims[d]);
    const unsigned char be[4] = {static_cast<unsigned char>(v >> 24),
                                 static_cast<unsigned char>(v >> 16),
                                 static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
    out.write(reinterpret_cast<const char*>(be), 4);
    if (d > 0) per *= a.dims[d];
  }
  out.write(reinterpret_cast<const char*>(a.data.data()), count * per);
}

// The first `train` training and `test` test samples, as plain IDX files in `dir`.
void write_subset(const std::string& dir, int64_t train, int64_t test) {
  for (const auto& [prefix, count] : {std::pair<std::string, int64_t>{"train", train},
                                      std::pair<std::string, int64_t>{"t10k", test}}) {
    for (const char* kind : {"images-idx3-ubyte", "labels-idx1-ubyte"}) {
      const std::string name = prefix + "-" + kind;
      write_idx(dir + "/" + name, read_idx(std::string(kSource) + "/" + name + ".gz"), count);
    }
  }
}

struct Result {
  std::vector<double> params;
  std::vector<double> losses;
};

Result train(const std::string& yaml, const std::string& data_dir, Communicator& comm,
             std::vector<std::string> overrides = {}) {
  overrides.push_back("data.path=" + data_dir);
  Config cfg = load_config_text(yaml, "train_equivalence_test", overrides);
  Trainer trainer(cfg, comm);
  TrainSummary summary = trainer.run();
  return {as_doubles(trainer.model().params().params()), summary.losses};
}

// Steps, batches and optimizer shared by both models. global 16 = 4 micro-batches of 4: a world
// of one accumulates 4, two ranks 2 each, four ranks 1 each. Tiny buckets put several
// all-reduces in flight during backward.
const char* kCommon = R"(
data:
  name: fashion_mnist
  seed: 3
train:
  steps: 20
  global_batch: 16
  micro_batch: 4
  eval_every: 0
  eval_batch: 128
  seed: 5
optim:
  name: adamw
  lr: 3.0e-3
  weight_decay: 0.01
  warmup_steps: 2
  schedule: cosine
  clip_norm: 1.0
comm:
  bucket_mb: 0.02
  first_bucket_mb: 0.002
  timeout_s: 120
metrics:
  path: ""
  log_every: 1
)";

const char* kMlp = R"(
model:
  name: mlp
  hidden: [64, 32]
  dropout: 0.2
)";

const char* kCnn = R"(
model:
  name: cnn
  channels: [8, 16]
  kernel: 3
  fc: 32
  dropout: 0.25
)";

class Equivalence : public ::testing::Test {
 protected:
  // Rank 0 writes the data; every rank reads that folder (they share a host), since ranks that
  // name different data paths fail the start-up agreement, as they should.
  static void SetUpTestSuite() {
    Tensor path = Tensor::zeros(Shape{4096}, DType::u8, cpu_device());
    if (job().rank() == 0) {
      dir_ = new TempDir();
      write_subset(dir_->path(), 512, 128);
      std::copy(dir_->path().begin(), dir_->path().end(), path.data<uint8_t>());
    }
    job().broadcast(path, 0);
    data_path_ = reinterpret_cast<const char*>(path.data<uint8_t>());
  }
  static void TearDownTestSuite() {
    job().barrier();
    delete dir_;
    dir_ = nullptr;
  }

  // Trains on this job and on a world of one; compares parameters and loss curves.
  void expect_same_as_one_rank(const std::string& model_yaml,
                               const std::vector<std::string>& overrides) {
    const std::string yaml = model_yaml + kCommon;
    std::unique_ptr<Communicator> self = make_self_communicator();
    Result one = train(yaml, data_path_, *self, overrides);
    Result many = train(yaml, data_path_, job(), overrides);

    Mismatches m;
    // fp32 through 20 AdamW steps; only the order in which per-sample gradients are summed
    // differs (micro-batches accumulated vs. summed across ranks), a few ulps per step. The
    // acceptance measure is the relative error of the whole parameter vector, <= 1e-5.
    // Element-wise, AdamW divides by sqrt(v): an element whose gradient is nearly zero (a
    // pixel that is mostly background) turns those ulps into up to ~1e-6 of absolute change,
    // hence atol 1e-5, still 300x below one step's update (lr 3e-3): a wrong sample, dropout
    // mask or averaging factor moves parameters by about that much and fails.
    double diff2 = 0, ref2 = 0;
    for (size_t i = 0; i < one.params.size() && i < many.params.size(); ++i) {
      diff2 += (many.params[i] - one.params[i]) * (many.params[i] - one.params[i]);
      ref2 += one.params[i] * one.params[i];
    }
    const double rel = std::sqrt(diff2 / ref2);
    std::printf("rank %d: %zu parameters, relative difference to one rank %.3g\n", job().rank(),
                one.params.size(), rel);
    if (!(rel <= 1e-5)) m.add("parameters differ from one rank's by {:.3g} relative", rel);
    ::testing::AssertionResult params = all_close(many.params, one.params, 1e-5, 1e-5);
    if (!params) m.add("parameters vs one rank: {}", params.message());
    ::testing::AssertionResult losses = all_close(many.losses, one.losses, 1e-5, 0);
    if (!losses) m.add("loss curve vs one rank: {}", losses.message());
    if (many.losses.size() != 20) m.add("{} losses logged, expected 20", many.losses.size());
    // The ranks apply the same update to the same summed gradients: bit-identical.
    Tensor mine = Tensor::from_vector(many.params, Shape{static_cast<int64_t>(many.params.size())});
    Tensor root = Tensor::from_vector(many.params, mine.shape());
    job().broadcast(root, 0);
    int64_t differ = 0;
    for (int64_t i = 0; i < mine.numel(); ++i) {
      differ += mine.data<double>()[i] != root.data<double>()[i];
    }
    if (differ) m.add("{} parameters differ from rank 0's", differ);
    EXPECT_AGREED_NO_MISMATCH(m);
  }

  static TempDir* dir_;
  static std::string data_path_;
};

TempDir* Equivalence::dir_ = nullptr;
std::string Equivalence::data_path_;

TEST_F(Equivalence, MlpMatchesOneRank) { expect_same_as_one_rank(kMlp, {}); }

TEST_F(Equivalence, CnnMatchesOneRank) { expect_same_as_one_rank(kCnn, {}); }

TEST_F(Equivalence, MlpWithoutOverlapMatchesOneRank) {
  expect_same_as_one_rank(kMlp, {"comm.overlap=false"});
}

}  // namespace
}  // namespace kiln::test
