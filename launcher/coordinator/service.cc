// The coordinator's RPC handlers: authentication, checks, dispatch to memory or the durable
// writer, and the accounting of every answer; the completion-queue threads that run them.
#include "launcher/coordinator/service.h"

#include <memory>

#include "core/log.h"
#include "launcher/coordinator/prometheus.h"
#include "launcher/coordinator/request_checks.h"

namespace kiln::coord {

namespace {

constexpr const char* kMethodNames[] = {
    "Register",        "Heartbeat",   "ReportMetrics", "CommitCheckpoint", "KvPut",    "KvGet",
    "StartGeneration", "RecordEvent", "SetAction",     "GetJob",           "ListJobs", "Ping"};

constexpr const char* kCodeNames[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

constexpr double kLogBurst = 200, kLogPerSecond = 20;

}  // namespace

CoordinatorService::CoordinatorService(Registry& registry, KvStore& kv, DurableWriter& writer,
                                       TokenSet tokens)
    : registry_(registry), kv_(kv), writer_(writer), tokens_(std::move(tokens)) {}

CoordinatorService::~CoordinatorService() { stop(); }

void CoordinatorService::attach(grpc::ServerBuilder& builder, int threads) {
  builder.RegisterService(&async_);
  for (int i = 0; i < threads; ++i) queues_.push_back(builder.AddCompletionQueue());
}

template <typename Req, typename Reply>
void CoordinatorService::serve(typename Call<Req, Reply>::RequestFn request,
                               void (CoordinatorService::*handler)(Call<Req, Reply>*), int slots) {
  auto fn = std::make_shared<typename Call<Req, Reply>::Handler>(
      [this, handler](Call<Req, Reply>* c) { (this->*handler)(c); });
  handlers_.push_back(fn);
  for (auto& q : queues_) {
    for (int i = 0; i < slots; ++i) Call<Req, Reply>::listen(&async_, q.get(), request, fn.get());
  }
}

void CoordinatorService::start() {
  // Requests posted ahead per queue: many for the calls every rank makes every second, a few
  // for the rest.
  constexpr int kHot = 64, kCold = 4;
  serve(&Async::RequestRegister, &CoordinatorService::on_register, kCold);
  serve(&Async::RequestHeartbeat, &CoordinatorService::on_heartbeat, kHot);
  serve(&Async::RequestReportMetrics, &CoordinatorService::on_report_metrics, kHot);
  serve(&Async::RequestCommitCheckpoint, &CoordinatorService::on_commit_checkpoint, kCold);
  serve(&Async::RequestKvPut, &CoordinatorService::on_kv_put, kCold);
  serve(&Async::RequestKvGet, &CoordinatorService::on_kv_get, kCold);
  serve(&Async::RequestStartGeneration, &CoordinatorService::on_start_generation, kCold);
  serve(&Async::RequestRecordEvent, &CoordinatorService::on_record_event, kCold);
  serve(&Async::RequestSetAction, &CoordinatorService::on_set_action, kCold);
  serve(&Async::RequestGetJob, &CoordinatorService::on_get_job, kCold);
  serve(&Async::RequestListJobs, &CoordinatorService::on_list_jobs, kCold);
  serve(&Async::RequestPing, &CoordinatorService::on_ping, kHot);
  for (auto& q : queues_) {
    threads_.emplace_back([cq = q.get()] {
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) static_cast<CallTag*>(tag)->proceed(ok);
    });
  }
}

void CoordinatorService::stop() {
  for (auto& q : queues_) q->Shutdown();
  for (std::thread& t : threads_) t.join();
  if (threads_.empty()) {  // never started: drain here, as gRPC asks before destruction
    for (auto& q : queues_) {
      void* tag = nullptr;
      bool ok = false;
      while (q->Next(&tag, &ok)) static_cast<CallTag*>(tag)->proceed(ok);
    }
  }
  threads_.clear();
  queues_.clear();
}

grpc::Status CoordinatorService::authorize(const grpc::ServerContext& ctx, const std::string& job,
                                           std::string* scope) const {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "no authorization metadata: send `authorization: Bearer <token>` with "
                        "the job's token (coordinator.token_file or KILN_COORDINATOR_TOKEN)");
  }
  std::string_view token = bearer_token(std::string_view(it->second.data(), it->second.size()));
  if (token.empty()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the authorization metadata is not of the form `Bearer <token>`");
  }
  std::optional<std::string> admits = tokens_.scope(token);
  if (!admits) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the token is not one this coordinator accepts: check the job's token "
                        "file against the coordinator's");
  }
  if (!admits->empty() && !job.empty() && *admits != job) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        fmt::format("the token admits job '{}' only, not '{}'", *admits, job));
  }
  if (scope) *scope = *admits;
  return grpc::Status::OK;
}

void CoordinatorService::log_refusal(Method m, const grpc::Status& s, const std::string& peer) {
  uint64_t suppressed = 0;
  {
    std::lock_guard<std::mutex> lock(log_mu_);
    const auto now = std::chrono::steady_clock::now();
    log_tokens_ = std::min(
        kLogBurst,
        log_tokens_ + kLogPerSecond * std::chrono::duration<double>(now - log_refill_).count());
    log_refill_ = now;
    if (log_tokens_ < 1) {
      ++log_suppressed_;
      return;
    }
    log_tokens_ -= 1;
    std::swap(suppressed, log_suppressed_);
  }
  const int code = static_cast<int>(s.error_code());
  KILN_LOG_WARN("coord", "refused {} from {}: {}: {}{}", kMethodNames[m], peer,
                code >= 0 && code < kCodes ? kCodeNames[code] : "?", s.error_message(),
                suppressed ? fmt::format(" ({} more refusals were not logged)", suppressed) : "");
}

template <typename C>
void CoordinatorService::finish(C* c, Method m, const grpc::Status& s) {
  const int code = static_cast<int>(s.error_code());
  counts_[m][code >= 0 && code < kCodes ? code : 2].fetch_add(1, std::memory_order_relaxed);
  if (!s.ok()) log_refusal(m, s, c->ctx.peer());
  c->finish(s);
}

template <typename C, typename Fn>
void CoordinatorService::answer_now(C* c, Method m, const std::string& job,
                                    const grpc::Status& checked, Fn&& fn) {
  grpc::Status s = authorize(c->ctx, job);
  if (s.ok()) s = checked;
  if (s.ok()) {
    try {
      s = fn();
    } catch (const std::exception& e) {
      s = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
  }
  finish(c, m, s);
}

template <typename C>
void CoordinatorService::answer_durable(C* c, Method m, const std::string& job,
                                        const grpc::Status& checked, DurableWriter::Op op,
                                        std::function<void()> on_ok) {
  grpc::Status s = authorize(c->ctx, job);
  if (s.ok()) s = checked;
  if (!s.ok()) {
    finish(c, m, s);
    return;
  }
  writer_.submit(std::move(op), [this, c, m, on_ok = std::move(on_ok)](const grpc::Status& r) {
    if (r.ok() && on_ok) on_ok();
    finish(c, m, r);
  });
}

void CoordinatorService::on_register(Call<pb::RegisterRequest, pb::RegisterReply>* c) {
  answer_durable(c, kRegister, c->req.job(), check(c->req),
                 [this, c](Store& st) { return registry_.register_member(st, c->req, &c->reply); });
}

void CoordinatorService::on_heartbeat(Call<pb::HeartbeatRequest, pb::HeartbeatReply>* c) {
  answer_now(c, kHeartbeat, c->req.job(), check(c->req),
             [&] { return registry_.heartbeat(c->req, &c->reply); });
}

void CoordinatorService::on_report_metrics(
    Call<pb::ReportMetricsRequest, pb::ReportMetricsReply>* c) {
  answer_now(c, kReportMetrics, c->req.job(), check(c->req),
             [&] { return registry_.report_metrics(c->req, &c->reply); });
}

void CoordinatorService::on_commit_checkpoint(
    Call<pb::CommitCheckpointRequest, pb::CommitCheckpointReply>* c) {
  answer_durable(c, kCommitCheckpoint, c->req.job(), check(c->req), [this, c](Store& st) {
    return registry_.commit_checkpoint(st, c->req, &c->reply);
  });
}

void CoordinatorService::on_kv_put(Call<pb::KvPutRequest, pb::KvPutReply>* c) {
  auto version = std::make_shared<uint64_t>(0);
  answer_durable(
      c, kKvPut, c->req.job(), check(c->req),
      [this, c, version](Store& st) {
        if (!kv_.has_room(c->req.job(), c->req.key())) {
          return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              fmt::format("job '{}' holds {} keys, the most a job may",
                                          c->req.job(), KvStore::kMaxKeysPerJob));
        }
        *version = kv_.next_version();
        st.put_kv(KvRow{c->req.job(), c->req.key(), c->req.value(), *version});
        return grpc::Status::OK;
      },
      // Readers see the value only once it is on disk.
      [this, c, version] {
        kv_.publish(c->req.job(), c->req.key(), c->req.value(), *version);
        c->reply.set_version(*version);
      });
}

void CoordinatorService::on_kv_get(Call<pb::KvGetRequest, pb::KvGetReply>* c) {
  grpc::Status s = authorize(c->ctx, c->req.job());
  if (s.ok()) s = check(c->req);
  if (!s.ok()) {
    finish(c, kKvGet, s);
    return;
  }
  auto answer = [this, c](const grpc::Status& st, const KvStore::Entry* e) {
    if (e) {
      c->reply.set_value(e->value);
      c->reply.set_version(e->version);
    }
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      finish(
          c, kKvGet,
          grpc::Status(st.error_code(), fmt::format("key '{}' of job '{}' did not appear "
                                                    "within {} ms",
                                                    c->req.key(), c->req.job(), c->req.wait_ms())));
    } else {
      finish(c, kKvGet, st);
    }
  };
  if (c->req.wait_ms() == 0) {
    std::optional<KvStore::Entry> e = kv_.get(c->req.job(), c->req.key());
    answer(e ? grpc::Status::OK
             : grpc::Status(grpc::StatusCode::NOT_FOUND,
                            fmt::format("job '{}' has no key '{}'", c->req.job(), c->req.key())),
           e ? &*e : nullptr);
  } else {
    kv_.wait(c->req.job(), c->req.key(),
             KvStore::Clock::now() + std::chrono::milliseconds(c->req.wait_ms()), answer);
  }
}

void CoordinatorService::on_start_generation(
    Call<pb::StartGenerationRequest, pb::StartGenerationReply>* c) {
  answer_durable(c, kStartGeneration, c->req.job(), check(c->req), [this, c](Store& st) {
    return registry_.start_generation(st, c->req, &c->reply);
  });
}

void CoordinatorService::on_record_event(Call<pb::RecordEventRequest, pb::RecordEventReply>* c) {
  answer_durable(c, kRecordEvent, c->req.job(), check(c->req),
                 [this, c](Store& st) { return registry_.record_event(st, c->req, &c->reply); });
}

void CoordinatorService::on_set_action(Call<pb::SetActionRequest, pb::SetActionReply>* c) {
  answer_durable(c, kSetAction, c->req.job(), check(c->req),
                 [this, c](Store& st) { return registry_.set_action(st, c->req, &c->reply); });
}

void CoordinatorService::on_get_job(Call<pb::GetJobRequest, pb::JobStatus>* c) {
  answer_now(c, kGetJob, c->req.job(), check(c->req),
             [&] { return registry_.get_job(c->req, &c->reply); });
}

void CoordinatorService::on_list_jobs(Call<pb::ListJobsRequest, pb::ListJobsReply>* c) {
  std::string scope;
  grpc::Status s = authorize(c->ctx, "", &scope);
  if (s.ok()) registry_.list_jobs(scope, &c->reply);
  finish(c, kListJobs, s);
}

void CoordinatorService::on_ping(Call<pb::PingRequest, pb::PingReply>* c) {
  answer_now(c, kPing, "", grpc::Status::OK, [&] {
    c->reply.set_coordinator_id(registry_.coordinator_id());
    c->reply.set_time(unix_now());
    return grpc::Status::OK;
  });
}

void CoordinatorService::write_prometheus(PromWriter& out) const {
  out.family("kiln_coordinator_requests_total", "counter",
             "Requests answered, by method and status code");
  for (int m = 0; m < kMethods; ++m) {
    for (int c = 0; c < kCodes; ++c) {
      const uint64_t n = counts_[m][c].load(std::memory_order_relaxed);
      if (n) {
        out.sample("kiln_coordinator_requests_total",
                   {{"method", kMethodNames[m]}, {"code", kCodeNames[c]}}, static_cast<double>(n));
      }
    }
  }
}

}  // namespace kiln::coord
