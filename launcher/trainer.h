// The training loop of one rank: micro-batches from the global sample order, forward/backward,
// gradient synchronisation, a per-step control all-reduce so every rank acts alike, the
// optimizer, evaluation, metrics and progress.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "core/config.h"
#include "core/data/dataset.h"
#include "core/data/sampler.h"
#include "launcher/metrics.h"
#include "launcher/reporter.h"
#include "models/model.h"
#include "optim/optimizer.h"

namespace kiln {

struct EvalResult {
  double loss = 0;      // mean per prediction
  double accuracy = 0;  // share of correct predictions
  int64_t count = 0;
};

struct TrainSummary {
  int64_t steps = 0;          // optimizer steps taken (skipped ones excluded)
  int64_t skipped = 0;        // steps skipped for a non-finite loss
  bool stopped_early = false;  // a stop was requested (signal)
  double last_loss = 0;        // mean training loss of the last logging window
  EvalResult eval;
  double seconds = 0;
  double samples_per_s = 0;
};

// Set by signal handlers; checked at every step boundary through the control all-reduce.
std::atomic<bool>& stop_requested();

class Trainer {
 public:
  Trainer(const Config& cfg, Communicator& comm);
  ~Trainer();
  TrainSummary run();
  EvalResult evaluate();

  Model& model() { return *model_; }
  int64_t accumulation() const { return accum_; }

 private:
  struct StepTimes {
    double data = 0, compute = 0, comm = 0, optim = 0;
  };
  struct StepOutcome {
    LossSums sums;
    double grad_norm = 0;
    bool skipped = false;
    bool stop = false;
    bool checkpoint_now = false;  // the coordinator asked; every rank agrees
  };
  StepOutcome train_step(int64_t step, StepTimes& times);
  void load_micro_batch(int64_t position, int64_t n, const Dataset& data, MicroBatch& out,
                        const int64_t* indices);
  // Agrees on the coordinator's action: every rank learns the newest action id any rank saw.
  void apply_coordinator_action();

  Config cfg_;
  Communicator& comm_;
  Device* device_ = nullptr;
  DatasetPair data_;
  std::unique_ptr<GlobalSampler> sampler_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<Reporter> reporter_;  // null without coordinator.address
  PendingAction action_;                // this rank's view at the current step
  int64_t accum_ = 1;
  int64_t cursor_ = 0;  // training samples consumed (global stream position)
  int64_t consecutive_skips_ = 0;
  int64_t total_skips_ = 0;

  std::vector<int64_t> indices_;
  Tensor x_host_, y_host_;
  MicroBatch batch_;
  Tensor control_;  // f64 on the host: the per-step control all-reduce
};

// Checks that the global batch splits over `world` ranks; the error names the world sizes that
// would work. Returns the gradient accumulation steps.
int64_t accumulation_steps(const Config& cfg, int world);

}  // namespace kiln
