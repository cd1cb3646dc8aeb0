// The training loop of one rank: micro-batches from the global sample order, forward/backward
// with the gradient all-reduce overlapped (GradSync), a per-step control all-reduce so every
// rank acts alike, the optimizer, evaluation, metrics and progress. Ranks agree on the config,
// model, bucket plan and dataset before the first collective that moves tensors.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "comm/grad_sync.h"
#include "core/config.h"
#include "core/data/dataset.h"
#include "core/data/sampler.h"
#include "core/gpu_monitor.h"
#include "launcher/checkpointer.h"
#include "launcher/metrics.h"
#include "launcher/reporter.h"
#include "launcher/trace_session.h"
#include "models/model.h"
#include "optim/optimizer.h"

namespace kiln {

struct EvalResult {
  double loss = 0;      // mean per prediction
  double accuracy = 0;  // share of correct predictions
  int64_t count = 0;
};

struct TrainSummary {
  int64_t steps = 0;           // optimizer steps taken (skipped ones excluded)
  int64_t skipped = 0;         // steps skipped for a non-finite loss
  bool stopped_early = false;  // a stop was requested (signal)
  double last_loss = 0;        // mean training loss of the last logging window
  EvalResult eval;
  double seconds = 0;
  double samples_per_s = 0;
  // Mean training loss of each logging window, in order (the loss curve; the same on all ranks).
  std::vector<double> losses;
  // Totals over the run: compute (forward/backward), communication the step waited for after
  // backward (gradient buckets and the control all-reduce), optimizer, data loading.
  double compute_s = 0, comm_wait_s = 0, optim_s = 0, data_s = 0;
  double grad_wait_s = 0;  // the part of comm_wait_s spent on gradient buckets
};

// Set by signal handlers; checked at every step boundary through the control all-reduce.
std::atomic<bool>& stop_requested();

class Trainer {
 public:
  Trainer(const Config& cfg, Communicator& comm);
  ~Trainer();
  // Loads the checkpoint --resume names ("auto", "none" or a path) before run().
  void resume(const std::string& spec);
  TrainSummary run();
  EvalResult evaluate();

  Model& model() { return *model_; }
  int64_t accumulation() const { return accum_; }
  Optimizer& optimizer() { return *optimizer_; }
  Checkpointer& checkpointer() { return *checkpointer_; }
  const GradSync& grad_sync() const { return *grad_sync_; }

 private:
  struct StepTimes {
    double data = 0, compute = 0, comm = 0, optim = 0;
    double grad_wait = 0;  // the part of comm spent waiting for gradient buckets
    StepTimes& operator+=(const StepTimes& o) {
      data += o.data;
      compute += o.compute;
      comm += o.comm;
      optim += o.optim;
      grad_wait += o.grad_wait;
      return *this;
    }
  };
  struct StepOutcome {
    LossSums sums;
    double grad_norm = 0;
    bool skipped = false;
    bool stop = false;
    // On logging steps with several ranks: each rank's work (data + forward/backward) and
    // gradient wait per step over the logging window, in ms, indexed by rank.
    std::vector<double> rank_work_ms, rank_wait_ms;
    bool checkpoint_now = false;  // the coordinator asked; every rank agrees
    bool scale_overflow = false;  // fp16: gradients overflowed, update skipped, scale halved
    std::array<double, Checkpointer::kControlSlots> checkpoint{};  // summed over ranks
  };
  StepOutcome train_step(int64_t step, StepTimes& times);
  TrainProgress train_progress(int64_t steps_done) const;
  void load_micro_batch(int64_t position, int64_t n, const Dataset& data, MicroBatch& out,
                        const int64_t* indices);
  void agree_at_start();
  bool logging_step(int64_t done) const;
  // Rank 0, at the end of a logging window of `steps` steps that took `seconds`: the log line
  // and the metrics record (launcher/trainer_log.cc).
  void log_window(int64_t done, const StepOutcome& r, const LossSums& window, int64_t steps,
                  double seconds, const StepTimes& times, double eta_s);
  // Agrees on the coordinator's action: every rank learns the newest action id any rank saw.
  void apply_coordinator_action();

  Config cfg_;
  Communicator& comm_;                         // host tensors: control, metrics, evaluation
  std::unique_ptr<Communicator> device_comm_;  // device buffers (NCCL); null on the CPU
  Device* device_ = nullptr;
  DatasetPair data_;
  std::unique_ptr<GlobalSampler> sampler_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<GradSync> grad_sync_;
  double plan_tag_ = 0;  // a 20-bit fingerprint of the bucket plan, checked every step
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<Reporter> reporter_;  // null without coordinator.address
  PendingAction action_;                // this rank's view at the current step
  int64_t accum_ = 1;
  int64_t cursor_ = 0;  // training samples consumed (global stream position)
  int64_t consecutive_skips_ = 0;
  int64_t total_skips_ = 0;

  std::vector<int64_t> indices_;
  Tensor x_host_, y_host_;
  Tensor x_stage_;  // float inputs on the device before the cast to the compute dtype
  // fp16 dynamic loss scaling: halved on overflow, doubled after kLossScaleGrowthSteps good steps.
  static constexpr double kInitialLossScale = 65536.0;
  static constexpr int64_t kLossScaleGrowthSteps = 2000;
  double loss_scale_ = 1.0;
  int64_t good_scaled_steps_ = 0;
  int64_t scale_skips_ = 0;
  MicroBatch batch_;
  // f64 on the host: the per-step control all-reduce; on logging steps followed by each
  // rank's work and gradient wait (the straggler report), 2 x world more slots.
  Tensor control_;
  int64_t window_steps_run_ = 0;  // steps (skipped ones too) since the last logging step
  int64_t start_step_ = 0;        // steps done before this run (resumed from a checkpoint)
  std::unique_ptr<TraceSession> trace_;
  std::unique_ptr<GpuMonitor> gpu_;  // rank 0 on a GPU with NVML: memory, utilisation, power
  // Last member: destroyed first, since its writer thread reads the model and optimizer.
  std::unique_ptr<Checkpointer> checkpointer_;
};

// Checks that the global batch splits over `world` ranks; the error names the world sizes that
// would work. Returns the gradient accumulation steps.
int64_t accumulation_steps(const Config& cfg, int world);

}  // namespace kiln
