// The worker's reporter thread: registration, heartbeats, metric batches, checkpoint commits,
// backoff and replay.
#include "launcher/coordinator/reporter.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/log.h"

namespace kiln::coord {

namespace {

using Clock = std::chrono::steady_clock;
namespace pb = ::kiln::coord::v1;

constexpr size_t kBatch = 512;        // metric points per call (well under the 1024 limit)
constexpr size_t kMaxCommits = 1024;  // queued checkpoint commits
constexpr double kMinBackoff = 0.2, kMaxBackoff = 5.0;
constexpr double kFinalTimeout = 1.0;  // per call while shutting down

uint64_t pack(CoordinatorAction a, uint64_t id) { return id << 2 | static_cast<uint64_t>(a); }

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string this_host() {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "unknown";
  return name;
}

double finite_or_zero(double v) { return std::isfinite(v) ? v : 0.0; }

}  // namespace

GrpcReporter::GrpcReporter(ReporterOptions options)
    : o_([&] {
        if (options.host.empty()) options.host = this_host();
        if (options.pid == 0) options.pid = ::getpid();
        return std::move(options);
      }()),
      rpc_timeout_s_(std::clamp(2 * o_.heartbeat_s, 1.0, 10.0)) {
  channel_ = make_channel(o_.client);
  stub_ = pb::Coordinator::NewStub(channel_);
  thread_ = std::thread([this] {
    run();
    std::lock_guard<std::mutex> lock(mu_);
    exited_ = true;
    cv_.notify_all();
  });
}

GrpcReporter::~GrpcReporter() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
    // The last round (final heartbeat, queued metrics and commits) gets a few seconds; a call
    // still in flight then, to a coordinator that accepts connections but does not answer, is
    // cancelled.
    if (!cv_.wait_for(lock, std::chrono::seconds(3), [&] { return exited_; }) && current_) {
      current_->TryCancel();
    }
  }
  thread_.join();
}

void GrpcReporter::on_step(const StepReport& r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (points_.size() >= o_.queue_capacity) {
    points_.pop_front();
    ++stats_.points_dropped;
  }
  StepReport kept = r;
  // A skipped step's loss is not finite: the last finite one stands for it.
  if (!std::isfinite(kept.loss)) kept.loss = has_step_ ? latest_.loss : 0.0;
  points_.push_back(Point{next_seq_++, kept, wall_now()});
  latest_ = kept;
  has_step_ = true;
  if (phase_ == WorkerPhase::kStarting) phase_ = WorkerPhase::kTraining;
  if (points_.size() == kBatch) cv_.notify_one();
}

void GrpcReporter::on_phase(WorkerPhase phase) {
  std::lock_guard<std::mutex> lock(mu_);
  phase_ = phase;
}

void GrpcReporter::on_checkpoint(const CheckpointReport& r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (commits_.size() >= kMaxCommits) {
      KILN_LOG_WARN("coord",
                    "{} checkpoint commits wait for the coordinator; the commit of "
                    "step {} is dropped",
                    commits_.size(), commits_.front().step);
      commits_.pop_front();
    }
    commits_.push_back(r);
  }
  cv_.notify_one();
}

PendingAction GrpcReporter::pending_action() {
  const uint64_t p = pending_.load(std::memory_order_relaxed);
  if (p == 0) return {};
  return PendingAction{static_cast<CoordinatorAction>(p & 3), p >> 2};
}

void GrpcReporter::action_applied(uint64_t id) {
  uint64_t seen = applied_.load();
  while (seen < id && !applied_.compare_exchange_weak(seen, id)) {
  }
  uint64_t p = pending_.load();
  while (p != 0 && (p >> 2) <= id && !pending_.compare_exchange_weak(p, 0)) {
  }
}

GrpcReporter::Stats GrpcReporter::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void GrpcReporter::log_limited(const std::string& line) {
  const auto now = Clock::now();
  if (last_log_ != Clock::time_point{} &&
      std::chrono::duration<double>(now - last_log_).count() < o_.log_interval_s) {
    return;
  }
  outage_logged_ = true;
  last_log_ = now;
  KILN_LOG_WARN("coord", "{}", line);
}

template <typename Fn>
grpc::Status GrpcReporter::call(double timeout_s, Fn&& fn) {
  grpc::ClientContext ctx;
  prepare_context(ctx, o_.client.token, timeout_s);
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = &ctx;
  }
  grpc::Status s = fn(&ctx);
  std::lock_guard<std::mutex> lock(mu_);
  current_ = nullptr;
  return s;
}

GrpcReporter::Outcome GrpcReporter::failed(const char* call, const grpc::Status& s) {
  uint64_t failures;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failures = ++stats_.failed_calls;
  }
  transport_failure_ = s.error_code() == grpc::StatusCode::UNAVAILABLE;
  switch (s.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      // The coordinator does not know this rank (its state was reset): register again.
      return Outcome::kReregister;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      KILN_LOG_WARN("coord", "the coordinator refused {}: {}; it is not sent again", call,
                    describe(s));
      return Outcome::kDrop;
    default:
      break;
  }
  if (!in_outage_) {
    in_outage_ = true;
    outage_start_ = Clock::now();
  }
  log_limited(
      fmt::format("coordinator {}: {} failed ({}); training continues, retrying with "
                  "backoff ({} calls failed so far; this is logged at most every {:.0f} "
                  "s)",
                  o_.client.address, call, describe(s), failures, o_.log_interval_s));
  return Outcome::kRetry;
}

bool GrpcReporter::do_register(double timeout_s) {
  pb::RegisterRequest req;
  req.set_job(o_.job);
  if (generation_ >= 0) {
    req.set_generation(generation_);  // a re-registration stays in its generation
  } else if (o_.generation) {
    req.set_generation(*o_.generation);
  }
  req.set_rank(o_.rank);
  req.set_world(o_.world);
  req.set_host(o_.host);
  req.set_pid(o_.pid);
  req.set_config_hash(o_.config_hash);
  req.set_checkpoint_root(o_.checkpoint_root);
  pb::RegisterReply reply;
  grpc::Status s = call(timeout_s, [&](grpc::ClientContext* ctx) {
    return stub_->Register(ctx, req, &reply);
  });
  if (!s.ok()) {
    failed("Register", s);
    return false;
  }
  const bool first = generation_ < 0;
  generation_ = reply.generation();
  registered_ = true;
  size_t points = 0, commits = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.registrations;
    stats_.registered = true;
    stats_.generation = generation_;
    points = points_.size();
    commits = commits_.size();
  }
  if (first) {
    KILN_LOG_INFO("coord",
                  "registered with coordinator {} as rank {}/{} of job '{}', "
                  "generation {}",
                  o_.client.address, o_.rank, o_.world, o_.job, generation_);
  } else if (outage_logged_) {  // only after a reported outage: about a line a minute at most
    KILN_LOG_INFO(
        "coord",
        "coordinator {} reachable again{}; registered again, replaying {} "
        "metric points and {} checkpoint commits",
        o_.client.address,
        in_outage_
            ? fmt::format(" after {:.1f} s",
                          std::chrono::duration<double>(Clock::now() - outage_start_).count())
            : "",
        points, commits);
  }
  in_outage_ = false;
  outage_logged_ = false;
  return true;
}

GrpcReporter::Outcome GrpcReporter::do_heartbeat(double timeout_s) {
  pb::HeartbeatRequest req;
  req.set_job(o_.job);
  req.set_generation(generation_);
  req.set_rank(o_.rank);
  {
    std::lock_guard<std::mutex> lock(mu_);
    req.set_step(has_step_ ? latest_.step : -1);
    req.set_phase(static_cast<pb::Phase>(phase_));
    req.set_samples_per_s(finite_or_zero(latest_.samples_per_s));
    req.set_loss(finite_or_zero(latest_.loss));
    req.set_metrics_dropped(stats_.points_dropped);
  }
  req.set_applied_action_id(applied_.load());
  pb::HeartbeatReply reply;
  grpc::Status s = call(timeout_s, [&](grpc::ClientContext* ctx) {
    return stub_->Heartbeat(ctx, req, &reply);
  });
  if (!s.ok()) return failed("Heartbeat", s);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.heartbeats;
  }
  if (reply.action() == pb::ACTION_CONTINUE) {
    pending_.store(0);
  } else if (reply.action_id() > applied_.load()) {
    const uint64_t next = pack(static_cast<CoordinatorAction>(reply.action()), reply.action_id());
    if (pending_.exchange(next) != next) {
      KILN_LOG_INFO("coord", "the coordinator asks for {} (action {}{}{})",
                    pb::Action_Name(reply.action()), reply.action_id(),
                    reply.reason().empty() ? "" : ": ", reply.reason());
    }
  }
  return Outcome::kOk;
}

GrpcReporter::Outcome GrpcReporter::send_metrics(double timeout_s) {
  pb::ReportMetricsRequest req;
  req.set_job(o_.job);
  req.set_generation(generation_);
  req.set_rank(o_.rank);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < points_.size() && i < kBatch; ++i) {
      const Point& p = points_[i];
      pb::MetricPoint* m = req.add_points();
      m->set_seq(p.seq);
      m->set_step(p.r.step);
      m->set_loss(finite_or_zero(p.r.loss));
      m->set_samples_per_s(finite_or_zero(p.r.samples_per_s));
      m->set_step_ms(finite_or_zero(p.r.step_ms));
      m->set_time(p.time);
    }
  }
  if (req.points_size() == 0) return Outcome::kOk;
  pb::ReportMetricsReply reply;
  grpc::Status s = call(timeout_s, [&](grpc::ClientContext* ctx) {
    return stub_->ReportMetrics(ctx, req, &reply);
  });
  Outcome out = s.ok() ? Outcome::kOk : failed("ReportMetrics", s);
  if (out == Outcome::kOk || out == Outcome::kDrop) {
    // Acknowledged (or refused for good): remove what was sent. Points may have been dropped
    // from the front meanwhile, so go by sequence number.
    const uint64_t last = req.points(req.points_size() - 1).seq();
    std::lock_guard<std::mutex> lock(mu_);
    while (!points_.empty() && points_.front().seq <= last) {
      points_.pop_front();
      if (out == Outcome::kOk) ++stats_.points_acked;
    }
  }
  return out;
}

GrpcReporter::Outcome GrpcReporter::send_commit(double timeout_s) {
  CheckpointReport c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (commits_.empty()) return Outcome::kOk;
    c = commits_.front();
  }
  pb::CommitCheckpointRequest req;
  req.set_job(o_.job);
  req.set_generation(generation_);
  req.set_rank(o_.rank);
  req.set_step(c.step);
  req.set_path(c.path);
  req.set_manifest_checksum(c.manifest_checksum);
  req.set_duration_s(finite_or_zero(c.duration_s));
  req.set_bytes(c.bytes);
  pb::CommitCheckpointReply reply;
  grpc::Status s = call(timeout_s, [&](grpc::ClientContext* ctx) {
    return stub_->CommitCheckpoint(ctx, req, &reply);
  });
  Outcome out = s.ok() ? Outcome::kOk : failed("CommitCheckpoint", s);
  if (out == Outcome::kOk && s.ok()) {
    KILN_LOG_INFO("coord", "checkpoint step {} acknowledged ({}/{} ranks{})", c.step, reply.acks(),
                  reply.world(), reply.committed() ? ", committed" : "");
  }
  if (out == Outcome::kOk || out == Outcome::kDrop) {
    std::lock_guard<std::mutex> lock(mu_);
    commits_.pop_front();
    if (out == Outcome::kOk) {
      ++stats_.commits_acked;
      if (reply.committed()) stats_.committed_steps.push_back(c.step);
    }
  }
  return out;
}

void GrpcReporter::wait_for_retry(double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(seconds));
  // After a failed connection, retry as soon as the channel connects again instead of sleeping
  // out the backoff: a restarted coordinator sees its workers within its first second. A call
  // refused by a reachable coordinator waits out the backoff.
  const bool watch = transport_failure_ && channel_->GetState(false) != GRPC_CHANNEL_READY;
  for (;;) {
    const auto now = Clock::now();
    const auto slice = std::min(deadline, now + std::chrono::milliseconds(100));
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_ || now >= deadline) return;
      if (!watch) {
        cv_.wait_until(lock, slice, [&] { return stop_; });
        continue;
      }
    }
    const grpc_connectivity_state state = channel_->GetState(true);
    if (state == GRPC_CHANNEL_READY) return;
    channel_->WaitForStateChange(state, std::chrono::system_clock::now() + (slice - now));
  }
}

void GrpcReporter::run() {
  double backoff = kMinBackoff;
  auto next_heartbeat = Clock::now();
  for (;;) {
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping = stop_;
    }
    // While stopping, one last round with short deadlines, and only if the coordinator was
    // reachable: a finished job must not wait for a coordinator that is down.
    const double timeout = stopping ? kFinalTimeout : rpc_timeout_s_;
    if (stopping && (in_outage_ || !registered_)) return;

    Outcome out = Outcome::kOk;
    if (!registered_) out = do_register(timeout) ? Outcome::kOk : Outcome::kRetry;
    if (out == Outcome::kOk && (stopping || Clock::now() >= next_heartbeat)) {
      out = do_heartbeat(timeout);
      next_heartbeat = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(o_.heartbeat_s));
    }
    for (int i = 0; i < 64 && out == Outcome::kOk; ++i) {
      bool more;
      {
        std::lock_guard<std::mutex> lock(mu_);
        more = !commits_.empty();
      }
      if (!more) break;
      out = send_commit(timeout);
      if (out == Outcome::kDrop) out = Outcome::kOk;
    }
    // Metrics go out once per heartbeat period, or sooner when a full batch is waiting.
    for (int i = 0; i < 64 && out == Outcome::kOk; ++i) {
      bool more;
      {
        std::lock_guard<std::mutex> lock(mu_);
        more = !points_.empty();
      }
      if (!more) break;
      out = send_metrics(timeout);
      if (out == Outcome::kDrop) out = Outcome::kOk;
      std::lock_guard<std::mutex> lock(mu_);
      if (points_.size() < kBatch && !stopping) break;
    }
    if (stopping) return;

    double wait_s;
    if (out == Outcome::kOk) {
      backoff = kMinBackoff;
      wait_s = std::chrono::duration<double>(next_heartbeat - Clock::now()).count();
    } else {
      // Every failure may mean a coordinator that restarted: register again before anything
      // else, which also replays the queues.
      registered_ = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.registered = false;
      }
      wait_s = out == Outcome::kReregister ? 0.0 : backoff;
      if (out == Outcome::kRetry) {
        backoff = std::min(kMaxBackoff, backoff * 2);
        wait_for_retry(wait_s);
        continue;
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::duration<double>(std::max(0.0, wait_s)), [&] {
      return stop_ || (out == Outcome::kOk && (!commits_.empty() || points_.size() >= kBatch));
    });
  }
}

}  // namespace kiln::coord
