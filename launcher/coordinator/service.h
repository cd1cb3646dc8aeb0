// The gRPC service of `kiln coordinator`, on the asynchronous API (async_call.h): completion
// queues, each drained by one thread, and no thread held per call. Every call is authenticated
// (the job's token), then checked field by field, then answered from memory (heartbeats,
// metrics, views, reads) or queued on the durable writer (everything that changes durable
// state), whose commit precedes the reply. Every refusal is logged (rate-limited) and counted
// per method and status code for /metrics.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "launcher/coordinator/async_call.h"
#include "launcher/coordinator/auth.h"
#include "launcher/coordinator/durable_writer.h"
#include "launcher/coordinator/kiln.grpc.pb.h"
#include "launcher/coordinator/kv_store.h"
#include "launcher/coordinator/registry.h"

namespace kiln::coord {

class PromWriter;

class CoordinatorService {
 public:
  CoordinatorService(Registry& registry, KvStore& kv, DurableWriter& writer, TokenSet tokens);
  ~CoordinatorService();  // stop()

  // Before BuildAndStart: registers the service and `threads` completion queues.
  void attach(grpc::ServerBuilder& builder, int threads);
  // After BuildAndStart: posts the first requests and starts the queue threads.
  void start();
  // After Server::Shutdown and once nothing else can answer a call (writer stopped, waiting
  // reads answered): drains the queues and joins their threads.
  void stop();

  // Requests answered, by method and status code.
  void write_prometheus(PromWriter& out) const;

 private:
  using Async = pb::Coordinator::AsyncService;
  template <typename Req, typename Reply>
  using Call = UnaryCall<Async, Req, Reply>;

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

  void on_register(Call<pb::RegisterRequest, pb::RegisterReply>* c);
  void on_heartbeat(Call<pb::HeartbeatRequest, pb::HeartbeatReply>* c);
  void on_report_metrics(Call<pb::ReportMetricsRequest, pb::ReportMetricsReply>* c);
  void on_commit_checkpoint(Call<pb::CommitCheckpointRequest, pb::CommitCheckpointReply>* c);
  void on_kv_put(Call<pb::KvPutRequest, pb::KvPutReply>* c);
  void on_kv_get(Call<pb::KvGetRequest, pb::KvGetReply>* c);
  void on_start_generation(Call<pb::StartGenerationRequest, pb::StartGenerationReply>* c);
  void on_record_event(Call<pb::RecordEventRequest, pb::RecordEventReply>* c);
  void on_set_action(Call<pb::SetActionRequest, pb::SetActionReply>* c);
  void on_get_job(Call<pb::GetJobRequest, pb::JobStatus>* c);
  void on_list_jobs(Call<pb::ListJobsRequest, pb::ListJobsReply>* c);
  void on_ping(Call<pb::PingRequest, pb::PingReply>* c);

  // Posts `slots` requests of one method on every queue.
  template <typename Req, typename Reply>
  void serve(typename Call<Req, Reply>::RequestFn request,
             void (CoordinatorService::*handler)(Call<Req, Reply>*), int slots);
  // UNAUTHENTICATED without a known token; PERMISSION_DENIED when the token is another job's.
  // `scope` receives what the token admits ("" = every job).
  grpc::Status authorize(const grpc::ServerContext& ctx, const std::string& job,
                         std::string* scope = nullptr) const;
  // Answers the call, counting it and logging a refusal.
  template <typename C>
  void finish(C* c, Method m, const grpc::Status& s);
  // Authorizes and checks, then answers from memory with `fn`.
  template <typename C, typename Fn>
  void answer_now(C* c, Method m, const std::string& job, const grpc::Status& checked, Fn&& fn);
  // Authorizes and checks, then queues `op` on the durable writer; `on_ok` runs after a
  // successful commit, before the reply.
  template <typename C>
  void answer_durable(C* c, Method m, const std::string& job, const grpc::Status& checked,
                      DurableWriter::Op op, std::function<void()> on_ok = nullptr);
  void log_refusal(Method m, const grpc::Status& s, const std::string& peer);

  Registry& registry_;
  KvStore& kv_;
  DurableWriter& writer_;
  const TokenSet tokens_;
  Async async_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<void>> handlers_;  // kept alive while calls point to them
  std::array<std::array<std::atomic<uint64_t>, kCodes>, kMethods> counts_{};

  // Refusal log budget: a burst, then a steady rate; what is over budget is counted and
  // reported with the next line that is logged.
  std::mutex log_mu_;
  double log_tokens_ = 200;
  std::chrono::steady_clock::time_point log_refill_ = std::chrono::steady_clock::now();
  uint64_t log_suppressed_ = 0;
};

}  // namespace kiln::coord
