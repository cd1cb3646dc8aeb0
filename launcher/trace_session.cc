// The trace window: clock offset, start/stop at step boundaries, the per-rank file and its cost.
#include "launcher/trace_session.h"

#include <filesystem>

#include "core/env.h"
#include "core/log.h"
#include "core/trace.h"
#include "core/trace_file.h"

namespace kiln {

TraceSession::TraceSession(const Config& cfg, Communicator& comm) : cfg_(cfg), comm_(comm) {
  trace::set_thread_name("main");
  if (env::get_int("KILN_NVTX") != 0 && !trace::set_nvtx(true)) {
    KILN_LOG_WARN("train", "KILN_NVTX=1, but this build has no CUDA: no NVTX ranges");
  }
  enabled_ = !cfg_.trace.dir.empty();
  if (!enabled_) return;
  // Created now, so that a directory that cannot be written stops the run before it trains.
  std::error_code ec;
  std::filesystem::create_directories(cfg_.trace.dir, ec);
  KILN_CHECK(!ec, "{} = {}: cannot create the directory: {}", cfg_.where("trace.dir"),
             cfg_.trace.dir, ec.message());
  trace::set_clock_skew_ns(env::get_int("KILN_DEBUG_TRACE_SKEW_US") * 1000 * comm_.rank());
  begin_ = cfg_.trace.start_step - 1;
  end_ = begin_ + cfg_.trace.steps;
  clock_ = measure_clock_offset(comm_);
  Tensor worst = Tensor::zeros(Shape{1}, DType::f64, cpu_device());
  worst.data<double>()[0] = clock_.error_us;
  comm_.all_reduce(worst, ReduceOp::max, CollectiveTag{"clock sync"});
  KILN_LOG_DEBUG("train", "trace: this clock is {:.1f} us ahead of rank 0's (+-{:.1f} us)",
                 clock_.offset_us, clock_.error_us);
  KILN_LOG_INFO0("train",
                 "trace: steps {}-{} into {}; clocks aligned to rank 0's within "
                 "+-{:.1f} us (the largest bound over {} ranks)",
                 begin_ + 1, end_, cfg_.trace.dir, worst.data<double>()[0], comm_.world());
}

TraceSession::~TraceSession() {
  if (active_) trace::stop();
}

void TraceSession::before_step(int64_t step) {
  if (!enabled_ || active_ || written_ || step < begin_ || step >= end_) return;
  trace::start();
  active_ = true;
  first_ = step;
  started_ns_ = trace::now_ns();
}

void TraceSession::after_step(int64_t step) {
  if (!active_) return;
  last_ = step;
  if (step + 1 >= end_) write();
}

void TraceSession::finish() {
  if (active_) {
    write();
  } else if (enabled_ && !written_) {
    KILN_LOG_INFO0("train",
                   "trace: steps {}-{} lie outside the steps this run took; no trace "
                   "written (set trace.start_step)",
                   begin_ + 1, end_);
  }
}

void TraceSession::write() {
  trace::stop();
  active_ = false;
  written_ = true;
  const int64_t steps = std::max<int64_t>(1, last_ - first_ + 1);
  const double window_ms = static_cast<double>(trace::now_ns() - started_ns_) / 1e6;
  const auto t0 = trace::now_ns();
  std::vector<trace::ThreadEvents> threads = trace::snapshot();
  int64_t events = 0, dropped = 0;
  for (const auto& t : threads) {
    events += static_cast<int64_t>(t.events.size());
    dropped += t.dropped;
  }
  nlohmann::json other = {{"rank", comm_.rank()},
                          {"world", comm_.world()},
                          {"clock_offset_us", clock_.offset_us},
                          {"clock_error_us", clock_.error_us},
                          {"run", fmt::format("{:.3f}", clock_.root_start_us)},
                          {"first_step", first_ + 1},
                          {"last_step", last_ + 1},
                          {"events", events},
                          {"dropped", dropped},
                          {"kiln_version", KILN_VERSION}};
  const std::string text =
      trace::chrome_trace_json(threads, comm_.rank(), fmt::format("rank {}", comm_.rank()), other);
  const std::string path =
      (std::filesystem::path(cfg_.trace.dir) / trace::rank_file_name(comm_.rank())).string();
  const size_t bytes = trace::write_text_file(path, text);
  const double write_ms = static_cast<double>(trace::now_ns() - t0) / 1e6;

  // Recording costs about one calibrated span per event (two clock reads and an append); the
  // file is written once, after the window.
  const double span_ns = trace::measure_span_cost_ns();
  const double per_step_us = static_cast<double>(events) * span_ns / 1e3 / steps;
  const double step_ms = window_ms / steps;
  const std::string line = fmt::format(
      "trace: steps {}-{} written to {}: {} events ({} per step, {} dropped) on {} threads, "
      "{:.1f} KB in memory, {:.1f} KB of JSON written in {:.1f} ms; estimated cost {:.1f} us "
      "per step ({:.0f} ns per event; {:.3f}% of a {:.1f} ms step)",
      first_ + 1, last_ + 1, path, events, events / steps, dropped, threads.size(),
      static_cast<double>(events * sizeof(trace::Event)) / 1e3, bytes / 1e3, write_ms, per_step_us,
      span_ns, 100.0 * per_step_us / 1e3 / std::max(step_ms, 1e-9), step_ms);
  if (comm_.rank() == 0) {
    KILN_LOG_INFO("train", "{}", line);
  } else {
    KILN_LOG_DEBUG("train", "{}", line);
  }
  if (dropped > 0) {
    KILN_LOG_WARN("train",
                  "trace: {} events did not fit (KILN_TRACE_MAX_EVENTS per thread); "
                  "trace fewer steps or raise it",
                  dropped);
  }
}

}  // namespace kiln
