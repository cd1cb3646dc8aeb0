// The coordinator's jobs in memory: durable records (mirrored in the Store) plus each rank's
// live state (heartbeats, latest metrics), which is kept in memory only. Mutations run on the
// durable writer's thread inside a transaction: they check the request against the state, write
// the rows, then change memory; the reply goes out after the commit. Heartbeats, metrics and
// views take the registry's lock briefly from any thread. Requests reach it already checked
// field by field (validate.h).
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "launcher/coordinator/kiln.pb.h"
#include "launcher/coordinator/state.h"
#include "launcher/coordinator/store.h"

namespace kiln::coord {

namespace pb = ::kiln::coord::v1;
class PromWriter;

class Registry {
 public:
  explicit Registry(std::string coordinator_id);
  const std::string& coordinator_id() const { return id_; }
  // Rebuilds memory from what the store read at start-up.
  void restore(const Snapshot& s);

  // Durable: writer thread only.
  grpc::Status register_member(Store& store, const pb::RegisterRequest& req,
                               pb::RegisterReply* reply);
  grpc::Status commit_checkpoint(Store& store, const pb::CommitCheckpointRequest& req,
                                 pb::CommitCheckpointReply* reply);
  grpc::Status start_generation(Store& store, const pb::StartGenerationRequest& req,
                                pb::StartGenerationReply* reply);
  grpc::Status record_event(Store& store, const pb::RecordEventRequest& req,
                            pb::RecordEventReply* reply);
  grpc::Status set_action(Store& store, const pb::SetActionRequest& req, pb::SetActionReply* reply);

  // In memory: any thread.
  grpc::Status heartbeat(const pb::HeartbeatRequest& req, pb::HeartbeatReply* reply);
  grpc::Status report_metrics(const pb::ReportMetricsRequest& req, pb::ReportMetricsReply* reply);
  grpc::Status get_job(const pb::GetJobRequest& req, pb::JobStatus* reply) const;
  // The jobs a token of `scope` may see ("" = all).
  void list_jobs(const std::string& scope, pb::ListJobsReply* reply) const;
  void write_prometheus(PromWriter& out) const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Member {
    MemberRow row;
    bool seen = false;  // heard from since this coordinator started
    Clock::time_point last_seen;
    int64_t step = -1;
    int phase = 0;
    double samples_per_s = 0, loss = 0, step_ms = 0;
    bool has_loss = false;
    uint64_t applied_action_id = 0, metrics_dropped = 0, last_seq = 0, points = 0;
  };
  struct Generation {
    GenerationRow row;
    std::vector<std::optional<Member>> members;  // by rank
    int registered = 0;
  };
  struct Checkpoint {
    CheckpointRow row;
    std::set<int> acked;
  };
  struct Job {
    JobRow row;
    std::map<int64_t, Generation> generations;
    std::map<std::pair<int64_t, int64_t>, Checkpoint> checkpoints;  // by (step, generation)
    std::deque<EventRow> events;
    int restarts = 0, failures = 0;
    int64_t committed = 0;
    double duration_sum = 0, last_duration = 0;
  };

  Job* find_job(const std::string& job);
  // The member a worker call names, or the status to answer (NOT_FOUND, OUT_OF_RANGE,
  // FAILED_PRECONDITION for a generation that is over when `current_only`).
  Member* find_member(const std::string& job, int64_t generation, int rank, bool current_only,
                      grpc::Status* status, Job** job_out = nullptr);
  void add_event(Store& store, Job& job, const std::string& kind, const std::string& message);
  Generation& add_generation(Store& store, Job& job, int64_t generation, int world, int cause,
                             const std::string& reason, const std::string& config_hash);
  Job& add_job(Store& store, const std::string& job, const std::string& root);
  grpc::Status adopt_root(Store& store, Job& job, const std::string& root);
  static void fill_checkpoint(const Checkpoint& c, pb::Checkpoint* out);
  const Checkpoint* latest_committed(const Job& job) const;

  std::string id_;
  mutable std::mutex mu_;
  std::map<std::string, Job> jobs_;
};

}  // namespace kiln::coord
