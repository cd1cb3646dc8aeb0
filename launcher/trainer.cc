// The training loop of one rank.
#include "launcher/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "comm/agreement.h"
#include "comm/backend.h"
#include "core/env.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/trace.h"
#include "launcher/rank_spread.h"
#include "models/registry.h"

namespace kiln {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Slots of the per-step control all-reduce (sums over ranks).
enum Control : int {
  kLossSum = 0,
  kCorrect,
  kCount,
  kNonFinite,      // > 0 when any rank saw a non-finite loss
  kStop,           // > 0 when any rank was asked to stop
  kPlan,           // sum and sum of squares of the ranks' bucket-plan tags: equal tags on all n
  kPlanSq,         // ranks is exactly n * sum_sq == sum^2, which every rank reads alike
  kCheckpointNow,  // > 0 when any rank's coordinator reporter asks for a checkpoint now
  kActionPending,  // > 0 when any rank holds a coordinator action (then ids are agreed on)
  kCheckpoint,     // Checkpointer::kControlSlots slots: its save in flight, timed saves
  kControlSlots = kCheckpoint + Checkpointer::kControlSlots
};

int64_t mib_to_bytes(double mib) {
  return std::max<int64_t>(1, std::llround(mib * 1024.0 * 1024.0));
}

}  // namespace

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

int64_t accumulation_steps(const Config& cfg, int world) {
  const int64_t gb = cfg.train.global_batch, mb = cfg.train.micro_batch;
  const int64_t per_world = mb * world;
  if (gb % per_world == 0) return gb / per_world;
  std::string valid;
  for (int64_t w = 1; w <= gb / mb; ++w) {
    if (gb % (mb * w) == 0) valid += (valid.empty() ? "" : ", ") + std::to_string(w);
  }
  KILN_FAIL(
      "{} = {} cannot be split into micro-batches of {} over {} ranks (it must be a "
      "multiple of micro_batch x ranks = {}). World sizes that work with these batches: "
      "{}; or change train.micro_batch",
      cfg.where("train.global_batch"), gb, mb, world, per_world, valid);
}

Trainer::Trainer(const Config& cfg, Communicator& comm) : cfg_(cfg), comm_(comm) {
  accum_ = accumulation_steps(cfg_, comm_.world());
  device_ = &select_device(cfg_.train.device, comm_.local_rank());
  process_context().device = device_->name();
  KILN_CHECK(cfg_.train.precision == "fp32" || device_->type() != DeviceType::cpu,
             "{} = {} needs a GPU; the CPU trains in fp32", cfg_.where("train.precision"),
             cfg_.train.precision);

  data_ = open_datasets(cfg_);
  sampler_ =
      std::make_unique<GlobalSampler>(data_.train->size(), static_cast<uint64_t>(cfg_.data.seed));
  ModelSpec spec{data_.train->sample_shape(), data_.train->num_classes()};
  model_ = create_model(cfg_, spec);
  model_->build(*device_, DType::f32, static_cast<uint64_t>(cfg_.train.seed));
  // Device buffers are reduced by NCCL when the device is a GPU (host tensors stay on comm_).
  device_comm_ = make_device_communicator(cfg_, comm_, *device_);
  Communicator& grads_comm = device_comm_ ? *device_comm_ : comm_;
  GradSyncOptions sync;
  sync.bucket_bytes = mib_to_bytes(cfg_.comm.bucket_mb);
  sync.first_bucket_bytes = mib_to_bytes(cfg_.comm.first_bucket_mb);
  sync.overlap = cfg_.comm.overlap;
  sync.wire_dtype = cfg_.comm.grad_dtype == "bf16" ? DType::bf16 : DType::f32;
  grad_sync_ = std::make_unique<GradSync>(grads_comm, model_->params(), sync);
  plan_tag_ = static_cast<double>(std::stoull(grad_sync_->plan_hash().substr(0, 5), nullptr, 16));
  agree_at_start();
  // Every rank starts from rank 0's weights, whatever its own initialisation produced.
  grads_comm.broadcast(model_->params().params(), 0, CollectiveTag{"parameters"});
  // Mixed precision: 16-bit compute copies of the f32 master weights (DESIGN decision 1).
  if (cfg_.train.precision != "fp32") {
    model_->params().set_compute_dtype(cfg_.train.precision == "bf16" ? DType::bf16 : DType::f16);
    if (cfg_.train.precision == "fp16") loss_scale_ = kInitialLossScale;
  }
  optimizer_ = create_optimizer(cfg_.optim, model_->params());
  if (comm_.rank() == 0) metrics_ = std::make_unique<MetricsWriter>(cfg_.metrics.path);
  reporter_ = make_reporter(cfg_, comm_.rank(), comm_.world());

  const int64_t mb = cfg_.train.micro_batch;
  indices_.resize(static_cast<size_t>(std::max(mb, cfg_.train.eval_batch)));
  control_ = Tensor::zeros(Shape{kControlSlots + 2 * comm_.world()}, DType::f64, cpu_device());
  checkpointer_ =
      std::make_unique<Checkpointer>(cfg_, comm_, *model_, *optimizer_, data_.train->size());
  trace_ = std::make_unique<TraceSession>(cfg_, comm_);
  if (comm_.rank() == 0 && device_->type() == DeviceType::cuda) {
    gpu_ = GpuMonitor::open(device_->index());
  }
  if (reporter_) {
    // Every rank acknowledges each commit to the coordinator (see Checkpointer::resolve).
    checkpointer_->set_commit_hook([this](const CommitInfo& c) {
      reporter_->on_checkpoint({c.step, c.path,
                                c.manifest_xxh3 ? hash_hex(c.manifest_xxh3) : std::string(),
                                c.duration_s, c.bytes});
    });
  }

  KILN_LOG_INFO0("train", "model {}: {} parameters ({:.2f} MB), fingerprint {}", model_->name(),
                 model_->params().count(), model_->params().count() * 4.0 / 1e6,
                 model_->fingerprint());
  KILN_LOG_INFO0("train", "data: {} | eval: {}", data_.train->describe(), data_.eval->describe());
  KILN_LOG_INFO0("train",
                 "world {} x micro-batch {} x accumulation {} = global batch {}; "
                 "device {}; optimizer {}",
                 comm_.world(), mb, accum_, cfg_.train.global_batch, device_->name(),
                 optimizer_->name());
  if (comm_.world() > 1) {
    const auto& plan = grad_sync_->buckets();
    std::string sizes;
    for (size_t i = 0; i < plan.size() && i < 8; ++i) {
      sizes += fmt::format("{}{:.2f}", i ? ", " : "", plan[i].numel() * 4.0 / (1 << 20));
    }
    KILN_LOG_INFO0("train",
                   "gradient sync over {} ({}): {} buckets in backward order of [{}{}] "
                   "MiB, overlap {}, reduced in {}, collective deadline {} s",
                   device_comm_ ? device_comm_->backend() : comm_.backend(), comm_.world(),
                   plan.size(), sizes, plan.size() > 8 ? ", ..." : "",
                   grad_sync_->overlap() ? "on" : "off", cfg_.comm.grad_dtype, cfg_.comm.timeout_s);
  }
}

void Trainer::agree_at_start() {
  const auto& plan = grad_sync_->buckets();
  check_agreement(
      comm_,
      {{"config hash", config_hash(cfg_),
        "start every rank with the same config file, KILN_SET and --set flags"},
       {"model", model_->fingerprint(), "every rank must build the same model (model.*)"},
       {"bucket plan", fmt::format("{} buckets, hash {}", plan.size(), grad_sync_->plan_hash()),
        "comm.bucket_mb and comm.first_bucket_mb must match on every rank"},
       {"training samples", std::to_string(data_.train->size()),
        "every rank must read the same dataset (data.path)"},
       {"evaluation samples", std::to_string(data_.eval->size()),
        "every rank must read the same dataset (data.path)"}});
}

Trainer::~Trainer() = default;

bool Trainer::logging_step(int64_t done) const {
  return done % cfg_.metrics.log_every == 0 || done == cfg_.train.steps;
}

void Trainer::resume(const std::string& spec) {
  const auto t0 = Clock::now();
  std::optional<TrainProgress> p = checkpointer_->restore(spec);
  if (!p) return;
  // scripts/bench/recovery reads this line: the checkpoint load's share of a restart.
  KILN_LOG_INFO0("train", "checkpoint of step {} loaded in {:.1f} ms", p->step,
                 seconds_since(t0) * 1e3);
  start_step_ = p->step;
  cursor_ = p->cursor;
  total_skips_ = p->skipped_steps;
  consecutive_skips_ = p->consecutive_skips;
  if (cfg_.train.precision == "fp16") loss_scale_ = p->loss_scale;
  model_->params().refresh_compute_params();  // the master weights were just loaded
}

TrainProgress Trainer::train_progress(int64_t steps_done) const {
  return TrainProgress{steps_done, cursor_, total_skips_, consecutive_skips_, loss_scale_};
}

Trainer::StepOutcome Trainer::train_step(int64_t step, StepTimes& times) {
  trace::Span step_span("step", "train");
  step_span.arg("step", step + 1);
  StepOutcome r;
  const int64_t mb = cfg_.train.micro_batch;
  // Under fp16 the loss gradient is also multiplied by the loss scale (undone in the update).
  const float grad_scale =
      static_cast<float>(loss_scale_ / static_cast<double>(cfg_.train.global_batch));
  ParamStore& store = model_->params();
  store.grads().zero();
  ++window_steps_run_;

  for (int64_t m = 0; m < accum_; ++m) {
    auto t0 = Clock::now();
    const int64_t pos = micro_batch_position(cursor_, comm_.rank(), accum_, m, mb);
    {
      trace::Span span("data", "data");
      span.arg("micro_batch", m);
      sampler_->indices(pos, mb, indices_.data());
      load_micro_batch(pos, mb, *data_.train, batch_, indices_.data());
    }
    auto t1 = Clock::now();
    ForwardContext ctx{true, static_cast<uint64_t>(cfg_.train.seed), step, pos};
    // Only the last micro-batch's backward completes the gradients, so only it communicates.
    grad_sync_->begin_micro_batch(step, m == accum_ - 1);
    r.sums += model_->forward_backward(batch_, ctx, grad_scale);
    times.data += std::chrono::duration<double>(t1 - t0).count();
    times.compute += seconds_since(t1);
  }

  // Debug hooks, steps counted from 1 as the logs, the metrics and the errors count them: a rank
  // that blocks forever (watchdog and supervisor tests), slow steps (tests that kill ranks at
  // chosen steps), a poisoned step (non-finite tests), a stop as by SIGTERM.
  static const int64_t hang_step = env::get_int("KILN_DEBUG_HANG_AT_STEP");
  static const int64_t hang_rank = env::get_int("KILN_DEBUG_HANG_RANK");
  if (step + 1 == hang_step && (hang_rank < 0 || hang_rank == comm_.rank())) {
    KILN_LOG_WARN("train", "KILN_DEBUG_HANG_AT_STEP={}: this rank now blocks forever", step + 1);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  static const int64_t sleep_ms = env::get_int("KILN_DEBUG_STEP_SLEEP_MS");
  if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  static const int64_t nan_step = env::get_int("KILN_DEBUG_NAN_AT_STEP");
  if (step + 1 == nan_step) r.sums.loss = std::nan("");
  static const int64_t stop_step = env::get_int("KILN_DEBUG_STOP_AT_STEP");
  if (step + 1 == stop_step) stop_requested().store(true);

  auto t2 = Clock::now();
  double grad_wait = 0;
  {
    trace::Span span("gradient wait", "wait");  // what backward did not hide
    grad_wait = grad_sync_->finish();
  }
  times.grad_wait += grad_wait;
  double* c = control_.data<double>();
  c[kLossSum] = r.sums.loss;
  c[kCorrect] = r.sums.correct;
  c[kCount] = static_cast<double>(r.sums.count);
  c[kNonFinite] = std::isfinite(r.sums.loss) ? 0.0 : 1.0;
  action_ = reporter_ ? reporter_->pending_action() : PendingAction{};
  c[kStop] = stop_requested().load() || action_.action == CoordinatorAction::kStop ? 1.0 : 0.0;
  c[kCheckpointNow] = action_.action == CoordinatorAction::kCheckpointNow ? 1.0 : 0.0;
  c[kActionPending] = action_.id > 0 ? 1.0 : 0.0;
  c[kPlan] = plan_tag_;
  c[kPlanSq] = plan_tag_ * plan_tag_;
  checkpointer_->fill_control(c + kCheckpoint);
  // The straggler report rides on the control all-reduce of logging steps, which every rank
  // knows alike: each rank fills its own slots, the sum gathers them.
  const int world = comm_.world();
  const bool report = world > 1 && logging_step(step + 1);
  if (report) {
    const double per_step_ms = 1e3 / static_cast<double>(window_steps_run_);
    fill_rank_slots(c + kControlSlots, comm_.rank(), world,
                    (times.data + times.compute) * per_step_ms, times.grad_wait * per_step_ms);
  }
  {
    trace::Span span("control all-reduce", "wait");
    Tensor control = control_.view(0, Shape{report ? kControlSlots + 2 * world : kControlSlots});
    comm_.all_reduce(control, ReduceOp::sum, CollectiveTag{"control", step});
  }
  if (report) read_rank_slots(c + kControlSlots, world, r.rank_work_ms, r.rank_wait_ms);
  if (c[kActionPending] > 0) apply_coordinator_action();
  const double comm_wait = seconds_since(t2);
  times.comm += comm_wait;
  // Every rank, at debug level (KILN_LOG_LEVEL=info,train=debug): shows which rank waits for
  // which, i.e. load imbalance apart from communication.
  KILN_LOG_DEBUG("train",
                 "step {}: gradient wait {:.2f} ms ({} of {} buckets issued during "
                 "backward), control {:.2f} ms",
                 step + 1, grad_wait * 1e3, grad_sync_->launched_in_backward(),
                 grad_sync_->buckets().size(), (comm_wait - grad_wait) * 1e3);
  KILN_CHECK(comm_.world() * c[kPlanSq] == c[kPlan] * c[kPlan],
             "step {}: the ranks hold different gradient bucket plans (this rank's is {}); "
             "their gradients no longer line up. Restart every rank with the same comm.* "
             "settings",
             step + 1, grad_sync_->plan_hash());

  auto t3 = Clock::now();
  trace::Span optim_span("optimizer", "optim");
  r.sums.loss = c[kLossSum];
  r.sums.correct = c[kCorrect];
  r.sums.count = static_cast<int64_t>(c[kCount]);
  r.stop = c[kStop] > 0;
  r.checkpoint_now = c[kCheckpointNow] > 0;
  std::copy(c + kCheckpoint, c + kControlSlots, r.checkpoint.begin());
  // Gradients are identical on every rank after the all-reduce, so is their norm.
  r.grad_norm = std::sqrt(device_->ops().sum_squares(store.grads())) / loss_scale_;
  checkpointer_->before_update();  // a snapshot of the last step may still be copying
  if (cfg_.train.precision == "fp16" && c[kNonFinite] == 0 && !std::isfinite(r.grad_norm)) {
    // fp16 overflow: the scale was too large. Skip the update and halve it (not a failure).
    r.scale_overflow = true;
    loss_scale_ = std::max(1.0, loss_scale_ / 2);
    good_scaled_steps_ = 0;
    ++scale_skips_;
    KILN_LOG_WARN("train",
                  "step {}: fp16 gradients overflowed; update skipped, loss scale now "
                  "{} ({} such steps so far)",
                  step + 1, loss_scale_, scale_skips_);
  } else if (c[kNonFinite] > 0 || !std::isfinite(r.grad_norm)) {
    r.skipped = true;
  } else {
    const double lr = learning_rate(cfg_.optim, step, cfg_.train.steps);
    const double clip = clip_factor(r.grad_norm, cfg_.optim.clip_norm);
    optimizer_->step(store, lr, static_cast<float>(clip / loss_scale_));
    store.refresh_compute_params();
    if (cfg_.train.precision == "fp16" && ++good_scaled_steps_ % kLossScaleGrowthSteps == 0) {
      loss_scale_ *= 2;
    }
  }
  times.optim += seconds_since(t3);
  return r;
}

void Trainer::apply_coordinator_action() {
  // Ranks hear of an action at different steps; the all-reduce above made them act together,
  // and the newest id any rank saw marks the action done on every rank, so a rank that hears of
  // it later does not act on it a second time. Rare: only steps with a pending action get here.
  Tensor id = Tensor::zeros(Shape{1}, DType::f64, cpu_device());
  id.data<double>()[0] = static_cast<double>(action_.id);
  comm_.all_reduce(id, ReduceOp::max);
  if (reporter_) reporter_->action_applied(static_cast<uint64_t>(id.data<double>()[0]));
}

TrainSummary Trainer::run() {
  const TrainConfig& t = cfg_.train;
  const bool rank0 = comm_.rank() == 0;
  Progress progress(rank0);
  TrainSummary summary;
  StepTimes window_times, total_times;
  LossSums window;
  int64_t window_steps = 0;
  auto start = Clock::now();
  auto window_start = start;

  int64_t done = start_step_;
  for (int64_t step = start_step_; step < t.steps; ++step) {
    trace_->before_step(step);
    const auto step_start = Clock::now();
    StepOutcome r = train_step(step, window_times);
    cursor_ += t.global_batch;

    if (r.skipped) {
      ++total_skips_;
      ++consecutive_skips_;
      KILN_CHECK(t.on_nonfinite == "skip",
                 "non-finite loss or gradient at step {} (loss {}, gradient norm {}): the run "
                 "stops. Lower optim.lr, set optim.clip_norm, or set train.on_nonfinite: skip "
                 "to skip such steps",
                 step + 1, r.sums.loss, r.grad_norm);
      KILN_LOG_WARN("train",
                    "step {}: non-finite loss or gradient (loss {}, gradient norm {}); "
                    "step skipped ({} skipped so far)",
                    step + 1, r.sums.loss, r.grad_norm, total_skips_);
      KILN_CHECK(t.max_skips == 0 || consecutive_skips_ <= t.max_skips,
                 "{} steps in a row had a non-finite loss (train.max_skips = {}); stopping at "
                 "step {}",
                 consecutive_skips_, t.max_skips, step + 1);
    } else {
      consecutive_skips_ = 0;
      ++summary.steps;
      window += r.sums;
      ++window_steps;
    }

    done = step + 1;
    const double elapsed = seconds_since(start);
    const double rate =
        static_cast<double>((done - start_step_) * t.global_batch) / std::max(elapsed, 1e-9);
    if (reporter_) {
      reporter_->on_step({done, r.sums.count ? r.sums.loss / r.sums.count : std::nan(""), rate,
                          1000.0 * seconds_since(step_start)});
    }
    if (rank0 && window.count > 0) {
      progress.live(fmt::format(
          "step {}/{} | loss {:.4f} | acc {:.1f}% | {:.0f} samples/s | "
          "eta {}",
          done, t.steps, window.loss / window.count, 100.0 * window.correct / window.count, rate,
          format_duration((t.steps - done) * t.global_batch / rate)));
    }
    if (logging_step(done)) {
      const double loss = window.count ? window.loss / window.count : std::nan("");
      if (rank0) {
        progress.clear();
        log_window(done, r, window, window_steps, seconds_since(window_start), window_times,
                   (t.steps - done) * t.global_batch / rate);
      }
      summary.last_loss = loss;
      summary.losses.push_back(loss);
      total_times += window_times;
      window = LossSums{};
      window_times = StepTimes{};
      window_steps = 0;
      window_steps_run_ = 0;
      window_start = Clock::now();
    }
    const bool eval_now = t.eval_every > 0 && done % t.eval_every == 0 && done != t.steps;
    if (eval_now) {
      if (reporter_) reporter_->on_phase(WorkerPhase::kEvaluating);
      EvalResult e = evaluate();
      if (reporter_) reporter_->on_phase(WorkerPhase::kTraining);
      if (rank0) {
        progress.clear();
        KILN_LOG_INFO("train", "eval at step {}: loss {:.4f} | accuracy {:.2f}% ({} predictions)",
                      done, e.loss, 100 * e.accuracy, e.count);
        metrics_->write({{"step", done}, {"eval_loss", e.loss}, {"eval_accuracy", e.accuracy}});
      }
    }
    {
      trace::Span span("checkpoint", "checkpoint");
      checkpointer_->after_step(train_progress(done), r.checkpoint.data(),
                                /*force=*/r.stop || r.checkpoint_now);
    }
    trace_->after_step(step);
    if (r.stop) {
      summary.stopped_early = true;
      KILN_LOG_INFO0("train", "stop requested: stopping after step {}", done);
      break;
    }
  }

  trace_->finish();
  checkpointer_->finish(train_progress(done));
  summary.skipped = total_skips_;
  summary.compute_s = total_times.compute;
  summary.comm_wait_s = total_times.comm;
  summary.grad_wait_s = total_times.grad_wait;
  summary.optim_s = total_times.optim;
  summary.data_s = total_times.data;
  // A stopped run (preemption, a resize) exits as soon as its checkpoint is committed: a grace
  // period is short, and the evaluation would be of an unfinished model anyway.
  if (!summary.stopped_early) {
    if (reporter_) reporter_->on_phase(WorkerPhase::kEvaluating);
    summary.eval = evaluate();
  }
  if (reporter_) reporter_->on_phase(WorkerPhase::kFinished);
  summary.seconds = seconds_since(start);
  summary.samples_per_s = static_cast<double>((summary.steps + summary.skipped) * t.global_batch) /
                          std::max(summary.seconds, 1e-9);
  if (rank0 && summary.stopped_early) {
    progress.clear();
    KILN_LOG_INFO("train",
                  "stopped after step {} of {} in {} (no final evaluation); resume with "
                  "--resume auto",
                  done, t.steps, format_duration(summary.seconds));
  } else if (rank0) {
    progress.clear();
    const int64_t steps_run = summary.steps + summary.skipped;
    metrics_->write({{"step", done},  // the global step, also after a resume
                     {"eval_loss", summary.eval.loss},
                     {"eval_accuracy", summary.eval.accuracy},
                     {"final", true}});
    const double per = 1000.0 / std::max<int64_t>(1, steps_run);
    KILN_LOG_INFO("train",
                  "done: {} steps in {} ({:.0f} samples/s, {:.1f} ms/step: compute "
                  "{:.1f}, comm wait {:.1f} of which gradients {:.1f}, optim {:.1f}, data {:.1f}) "
                  "| final train loss {:.4f} | test loss {:.4f} | test accuracy {:.2f}% | "
                  "skipped steps {}",
                  steps_run, format_duration(summary.seconds), summary.samples_per_s,
                  summary.seconds * per, total_times.compute * per, total_times.comm * per,
                  total_times.grad_wait * per, total_times.optim * per, total_times.data * per,
                  summary.last_loss, summary.eval.loss, 100 * summary.eval.accuracy,
                  summary.skipped);
  }
  return summary;
}

}  // namespace kiln
