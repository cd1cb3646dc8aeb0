// The gRPC service of `kiln coordinator` (callback API: no thread is held per call). Every call
// is authenticated (the job's token), then checked field by field, then answered from memory
// (heartbeats, metrics, views, reads) or queued on the durable writer (everything that changes
// durable state), whose commit precedes the reply. Every refusal is logged (rate-limited) and
// counted per method and status code for /metrics.
#pragma once

#include <array>
#include <atomic>
#include <string>

#include "launcher/coordinator/auth.h"
#include "launcher/coordinator/durable_writer.h"
#include "launcher/coordinator/kiln.grpc.pb.h"
#include "launcher/coordinator/kv_store.h"
#include "launcher/coordinator/registry.h"

namespace kiln::coord {

class PromWriter;

class CoordinatorService final : public pb::Coordinator::CallbackService {
 public:
  CoordinatorService(Registry& registry, KvStore& kv, DurableWriter& writer, TokenSet tokens);

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* ctx,
                                     const pb::RegisterRequest* req,
                                     pb::RegisterReply* reply) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                      const pb::HeartbeatRequest* req,
                                      pb::HeartbeatReply* reply) override;
  grpc::ServerUnaryReactor* ReportMetrics(grpc::CallbackServerContext* ctx,
                                          const pb::ReportMetricsRequest* req,
                                          pb::ReportMetricsReply* reply) override;
  grpc::ServerUnaryReactor* CommitCheckpoint(grpc::CallbackServerContext* ctx,
                                             const pb::CommitCheckpointRequest* req,
                                             pb::CommitCheckpointReply* reply) override;
  grpc::ServerUnaryReactor* KvPut(grpc::CallbackServerContext* ctx, const pb::KvPutRequest* req,
                                  pb::KvPutReply* reply) override;
  grpc::ServerUnaryReactor* KvGet(grpc::CallbackServerContext* ctx, const pb::KvGetRequest* req,
                                  pb::KvGetReply* reply) override;
  grpc::ServerUnaryReactor* StartGeneration(grpc::CallbackServerContext* ctx,
                                            const pb::StartGenerationRequest* req,
                                            pb::StartGenerationReply* reply) override;
  grpc::ServerUnaryReactor* RecordEvent(grpc::CallbackServerContext* ctx,
                                        const pb::RecordEventRequest* req,
                                        pb::RecordEventReply* reply) override;
  grpc::ServerUnaryReactor* SetAction(grpc::CallbackServerContext* ctx,
                                      const pb::SetActionRequest* req,
                                      pb::SetActionReply* reply) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx, const pb::GetJobRequest* req,
                                   pb::JobStatus* reply) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const pb::ListJobsRequest* req,
                                     pb::ListJobsReply* reply) override;
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx, const pb::PingRequest* req,
                                 pb::PingReply* reply) override;

  // Requests answered, by method and status code.
  void write_prometheus(PromWriter& out) const;

 private:
  enum Method : int {
    kRegister,
    kHeartbeat,
    kReportMetrics,
    kCommitCheckpoint,
    kKvPut,
    kKvGet,
    kStartGeneration,
    kRecordEvent,
    kSetAction,
    kGetJob,
    kListJobs,
    kPing,
    kMethods
  };
  static constexpr int kCodes = 17;

  // UNAUTHENTICATED without a known token; PERMISSION_DENIED when the token is another job's.
  // `scope` receives what the token admits ("" = every job).
  grpc::Status authorize(grpc::CallbackServerContext* ctx, const std::string& job,
                         std::string* scope = nullptr) const;
  // Answers the call, counting it and logging a refusal.
  void finish(grpc::ServerUnaryReactor* reactor, Method m, const grpc::Status& s,
              const std::string& peer);
  // Authorizes and checks, then answers from memory with `fn`.
  template <typename Fn>
  grpc::ServerUnaryReactor* inline_call(grpc::CallbackServerContext* ctx, Method m,
                                        const std::string& job, const grpc::Status& checked,
                                        Fn&& fn);
  // Authorizes and checks, then queues `op` on the durable writer; `on_ok` runs after a
  // successful commit, before the reply.
  grpc::ServerUnaryReactor* durable_call(grpc::CallbackServerContext* ctx, Method m,
                                         const std::string& job, const grpc::Status& checked,
                                         DurableWriter::Op op,
                                         std::function<void()> on_ok = nullptr);
  void log_refusal(Method m, const grpc::Status& s, const std::string& peer);

  Registry& registry_;
  KvStore& kv_;
  DurableWriter& writer_;
  const TokenSet tokens_;
  std::array<std::array<std::atomic<uint64_t>, kCodes>, kMethods> counts_{};

  // Refusal log budget: a burst, then a steady rate; what is over budget is counted and
  // reported with the next line that is logged.
  std::mutex log_mu_;
  double log_tokens_ = 200;
  std::chrono::steady_clock::time_point log_refill_ = std::chrono::steady_clock::now();
  uint64_t log_suppressed_ = 0;
};

}  // namespace kiln::coord
