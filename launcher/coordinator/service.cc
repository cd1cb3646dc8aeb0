// The coordinator's RPC handlers: authentication, checks, dispatch to memory or the durable
// writer, and the accounting of every answer.
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

grpc::Status CoordinatorService::authorize(grpc::CallbackServerContext* ctx, const std::string& job,
                                           std::string* scope) const {
  const auto& md = ctx->client_metadata();
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

void CoordinatorService::finish(grpc::ServerUnaryReactor* reactor, Method m, const grpc::Status& s,
                                const std::string& peer) {
  const int code = static_cast<int>(s.error_code());
  counts_[m][code >= 0 && code < kCodes ? code : 2].fetch_add(1, std::memory_order_relaxed);
  if (!s.ok()) log_refusal(m, s, peer);
  reactor->Finish(s);
}

template <typename Fn>
grpc::ServerUnaryReactor* CoordinatorService::inline_call(grpc::CallbackServerContext* ctx,
                                                          Method m, const std::string& job,
                                                          const grpc::Status& checked, Fn&& fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  grpc::Status s = authorize(ctx, job);
  if (s.ok()) s = checked;
  if (s.ok()) {
    try {
      s = fn();
    } catch (const std::exception& e) {
      s = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
  }
  finish(reactor, m, s, s.ok() ? std::string() : ctx->peer());
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::durable_call(grpc::CallbackServerContext* ctx,
                                                           Method m, const std::string& job,
                                                           const grpc::Status& checked,
                                                           DurableWriter::Op op,
                                                           std::function<void()> on_ok) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  grpc::Status s = authorize(ctx, job);
  if (s.ok()) s = checked;
  if (!s.ok()) {
    finish(reactor, m, s, ctx->peer());
    return reactor;
  }
  writer_.submit(std::move(op), [this, reactor, m, peer = ctx->peer(),
                                 on_ok = std::move(on_ok)](const grpc::Status& result) {
    if (result.ok() && on_ok) on_ok();
    finish(reactor, m, result, peer);
  });
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::Register(grpc::CallbackServerContext* ctx,
                                                       const pb::RegisterRequest* req,
                                                       pb::RegisterReply* reply) {
  return durable_call(ctx, kRegister, req->job(), check(*req), [this, req, reply](Store& st) {
    return registry_.register_member(st, *req, reply);
  });
}

grpc::ServerUnaryReactor* CoordinatorService::Heartbeat(grpc::CallbackServerContext* ctx,
                                                        const pb::HeartbeatRequest* req,
                                                        pb::HeartbeatReply* reply) {
  return inline_call(ctx, kHeartbeat, req->job(), check(*req),
                     [&] { return registry_.heartbeat(*req, reply); });
}

grpc::ServerUnaryReactor* CoordinatorService::ReportMetrics(grpc::CallbackServerContext* ctx,
                                                            const pb::ReportMetricsRequest* req,
                                                            pb::ReportMetricsReply* reply) {
  return inline_call(ctx, kReportMetrics, req->job(), check(*req),
                     [&] { return registry_.report_metrics(*req, reply); });
}

grpc::ServerUnaryReactor* CoordinatorService::CommitCheckpoint(
    grpc::CallbackServerContext* ctx, const pb::CommitCheckpointRequest* req,
    pb::CommitCheckpointReply* reply) {
  return durable_call(
      ctx, kCommitCheckpoint, req->job(), check(*req),
      [this, req, reply](Store& st) { return registry_.commit_checkpoint(st, *req, reply); });
}

grpc::ServerUnaryReactor* CoordinatorService::KvPut(grpc::CallbackServerContext* ctx,
                                                    const pb::KvPutRequest* req,
                                                    pb::KvPutReply* reply) {
  auto version = std::make_shared<uint64_t>(0);
  return durable_call(
      ctx, kKvPut, req->job(), check(*req),
      [this, req, version](Store& st) {
        if (!kv_.has_room(req->job(), req->key())) {
          return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              fmt::format("job '{}' holds {} keys, the most a job may", req->job(),
                                          KvStore::kMaxKeysPerJob));
        }
        *version = kv_.next_version();
        st.put_kv(KvRow{req->job(), req->key(), req->value(), *version});
        return grpc::Status::OK;
      },
      // Readers see the value only once it is on disk.
      [this, req, reply, version] {
        kv_.publish(req->job(), req->key(), req->value(), *version);
        reply->set_version(*version);
      });
}

grpc::ServerUnaryReactor* CoordinatorService::KvGet(grpc::CallbackServerContext* ctx,
                                                    const pb::KvGetRequest* req,
                                                    pb::KvGetReply* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  grpc::Status s = authorize(ctx, req->job());
  if (s.ok()) s = check(*req);
  if (!s.ok()) {
    finish(reactor, kKvGet, s, ctx->peer());
    return reactor;
  }
  auto answer = [this, reactor, reply, peer = ctx->peer(), job = req->job(), key = req->key()](
                    const grpc::Status& st, const KvStore::Entry* e) {
    if (e) {
      reply->set_value(e->value);
      reply->set_version(e->version);
    }
    finish(reactor, kKvGet,
           st.ok() || st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED
               ? st
               : grpc::Status(st.error_code(),
                              fmt::format("key '{}' of job '{}' did not appear in time", key, job)),
           peer);
  };
  if (req->wait_ms() == 0) {
    std::optional<KvStore::Entry> e = kv_.get(req->job(), req->key());
    if (e) {
      answer(grpc::Status::OK, &*e);
    } else {
      answer(grpc::Status(grpc::StatusCode::NOT_FOUND,
                          fmt::format("job '{}' has no key '{}'", req->job(), req->key())),
             nullptr);
    }
  } else {
    kv_.wait(req->job(), req->key(),
             KvStore::Clock::now() + std::chrono::milliseconds(req->wait_ms()), answer);
  }
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::StartGeneration(grpc::CallbackServerContext* ctx,
                                                              const pb::StartGenerationRequest* req,
                                                              pb::StartGenerationReply* reply) {
  return durable_call(
      ctx, kStartGeneration, req->job(), check(*req),
      [this, req, reply](Store& st) { return registry_.start_generation(st, *req, reply); });
}

grpc::ServerUnaryReactor* CoordinatorService::RecordEvent(grpc::CallbackServerContext* ctx,
                                                          const pb::RecordEventRequest* req,
                                                          pb::RecordEventReply* reply) {
  return durable_call(ctx, kRecordEvent, req->job(), check(*req), [this, req, reply](Store& st) {
    return registry_.record_event(st, *req, reply);
  });
}

grpc::ServerUnaryReactor* CoordinatorService::SetAction(grpc::CallbackServerContext* ctx,
                                                        const pb::SetActionRequest* req,
                                                        pb::SetActionReply* reply) {
  return durable_call(ctx, kSetAction, req->job(), check(*req), [this, req, reply](Store& st) {
    return registry_.set_action(st, *req, reply);
  });
}

grpc::ServerUnaryReactor* CoordinatorService::GetJob(grpc::CallbackServerContext* ctx,
                                                     const pb::GetJobRequest* req,
                                                     pb::JobStatus* reply) {
  return inline_call(ctx, kGetJob, req->job(), check(*req),
                     [&] { return registry_.get_job(*req, reply); });
}

grpc::ServerUnaryReactor* CoordinatorService::ListJobs(grpc::CallbackServerContext* ctx,
                                                       const pb::ListJobsRequest* req,
                                                       pb::ListJobsReply* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::string scope;
  grpc::Status s = authorize(ctx, "", &scope);
  if (s.ok()) registry_.list_jobs(scope, reply);
  finish(reactor, kListJobs, s, s.ok() ? std::string() : ctx->peer());
  return reactor;
}

grpc::ServerUnaryReactor* CoordinatorService::Ping(grpc::CallbackServerContext* ctx,
                                                   const pb::PingRequest* req,
                                                   pb::PingReply* reply) {
  return inline_call(ctx, kPing, "", grpc::Status::OK, [&] {
    reply->set_coordinator_id(registry_.coordinator_id());
    reply->set_time(unix_now());
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
