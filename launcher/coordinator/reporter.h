// The worker side of the coordinator: a thread per rank that registers, heartbeats every
// heartbeat_s, sends step metrics in batches and checkpoint commits, and delivers the
// coordinator's actions. The training thread only enqueues (bounded: the oldest metric point is
// dropped and counted when the queue is full). When the coordinator is unreachable, training goes
// on; the thread retries with exponential backoff, logs at most once a minute, and on reconnect
// registers again and replays the metric points and commits that were not acknowledged.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "launcher/coordinator/client.h"
#include "launcher/reporter.h"

namespace kiln::coord {

struct ReporterOptions {
  ClientOptions client;
  std::string job;
  std::optional<int64_t> generation;  // absent: the coordinator picks
  int rank = 0;
  int world = 1;
  std::string host;  // empty: this machine's name
  int64_t pid = 0;   // 0: this process
  std::string config_hash;
  std::string checkpoint_root;  // absolute, or empty
  double heartbeat_s = 1.0;
  size_t queue_capacity = 4096;  // metric points held while unacknowledged
  double log_interval_s = 60;    // at most one "unreachable" line per interval
};

class GrpcReporter final : public Reporter {
 public:
  explicit GrpcReporter(ReporterOptions options);
  // Sends the last heartbeat and what is queued when the coordinator is reachable (a few
  // seconds at most), then joins the thread.
  ~GrpcReporter() override;

  void on_step(const StepReport& r) override;
  void on_phase(WorkerPhase phase) override;
  void on_checkpoint(const CheckpointReport& r) override;
  PendingAction pending_action() override;
  void action_applied(uint64_t id) override;

  struct Stats {
    bool registered = false;
    int64_t generation = -1;
    uint64_t registrations = 0;  // successful ones, first included
    uint64_t heartbeats = 0;     // acknowledged
    uint64_t failed_calls = 0;
    uint64_t points_acked = 0;
    uint64_t points_dropped = 0;
    std::vector<int64_t> committed_steps;  // checkpoints the coordinator reported committed
    uint64_t commits_acked = 0;
  };
  Stats stats() const;

 private:
  struct Point {
    uint64_t seq;
    StepReport r;
    double time;
  };
  enum class Outcome { kOk, kRetry, kReregister, kDrop };

  void run();
  bool do_register(double timeout_s);
  Outcome do_heartbeat(double timeout_s);
  Outcome send_metrics(double timeout_s);
  Outcome send_commit(double timeout_s);
  // Classifies a failed call and logs it (rate-limited for the retried kinds).
  Outcome failed(const char* call, const grpc::Status& s);
  void log_limited(const std::string& line);
  // Waits up to `seconds` before a retry, less when the channel reconnects; stop() ends it.
  void wait_for_retry(double seconds);
  // Runs one call with the token and a deadline; the destructor may cancel it.
  template <typename Fn>
  grpc::Status call(double timeout_s, Fn&& fn);

  const ReporterOptions o_;
  const double rpc_timeout_s_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::thread thread_;

  mutable std::mutex mu_;  // guards the queues, the latest step and stats_
  std::condition_variable cv_;
  bool stop_ = false;
  bool exited_ = false;                    // the thread has finished
  grpc::ClientContext* current_ = nullptr;  // the call in flight
  std::deque<Point> points_;
  uint64_t next_seq_ = 1;
  StepReport latest_;
  bool has_step_ = false;
  WorkerPhase phase_ = WorkerPhase::kStarting;
  std::deque<CheckpointReport> commits_;
  Stats stats_;

  // Reporter thread only.
  bool registered_ = false;
  int64_t generation_ = -1;
  bool outage_logged_ = false;  // this outage has been reported in the log
  std::chrono::steady_clock::time_point last_log_{};
  std::chrono::steady_clock::time_point outage_start_{};
  bool in_outage_ = false;
  bool transport_failure_ = false;  // the last failure was a connection failure

  std::atomic<uint64_t> pending_{0};  // id << 2 | action
  std::atomic<uint64_t> applied_{0};
};

}  // namespace kiln::coord
