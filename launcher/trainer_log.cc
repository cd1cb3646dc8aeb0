// The trainer's report of a logging window on rank 0: one log line with the step-time split,
// and the metrics record (loss, accuracy, learning rate, throughput, timings, the rank spread on
// several ranks, fp16 loss scale and GPU figures where they apply).
#include <algorithm>
#include <cmath>

#include "core/log.h"
#include "launcher/rank_spread.h"
#include "launcher/trainer.h"

namespace kiln {

void Trainer::log_window(int64_t done, const StepOutcome& r, const LossSums& window, int64_t steps,
                         double seconds, const StepTimes& times, double eta_s) {
  const TrainConfig& t = cfg_.train;
  const double rate = static_cast<double>(steps * t.global_batch) / std::max(seconds, 1e-9);
  const double loss = window.count ? window.loss / window.count : std::nan("");
  const double acc = window.count ? window.correct / window.count : std::nan("");
  const double lr = learning_rate(cfg_.optim, done - 1, t.steps);
  const double per = 1000.0 / static_cast<double>(std::max<int64_t>(1, steps));
  KILN_LOG_INFO("train",
                "step {:>6}/{} | loss {:.4f} | acc {:5.1f}% | lr {:.2e} | "
                "{:.0f} samples/s | step {:.1f} ms (compute {:.1f}, comm wait {:.1f} of "
                "which gradients {:.1f}, optim {:.1f}, data {:.1f}) | eta {}",
                done, t.steps, loss, 100 * acc, lr, rate, seconds * per, times.compute * per,
                times.comm * per, times.grad_wait * per, times.optim * per, times.data * per,
                format_duration(eta_s));
  nlohmann::json record = {{"step", done},
                           {"epoch", static_cast<double>(cursor_) / data_.train->size()},
                           {"loss", loss},
                           {"accuracy", acc},
                           {"lr", lr},
                           {"grad_norm", r.grad_norm},
                           {"samples_per_s", rate},
                           {"step_ms", seconds * per},
                           {"compute_ms", times.compute * per},
                           {"comm_wait_ms", times.comm * per},
                           {"grad_wait_ms", times.grad_wait * per},
                           {"optim_ms", times.optim * per},
                           {"data_ms", times.data * per},
                           {"skipped", total_skips_}};
  if (cfg_.train.precision == "fp16") {
    record["loss_scale"] = loss_scale_;
    record["scale_skips"] = scale_skips_;
  }
  if (!r.rank_work_ms.empty()) report_ranks(done, r.rank_work_ms, r.rank_wait_ms, record);
  if (gpu_) {
    for (const auto& [key, value] : gpu_->sample()) record[key] = value;
  }
  metrics_->write(record);
}

}  // namespace kiln
