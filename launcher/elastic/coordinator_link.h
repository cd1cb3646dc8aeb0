// The supervisor and the coordinator: a `kiln coordinator` started for the job when none is
// given (its state under the run folder, a generated token), and the calls the supervisor makes
// (StartGeneration, RecordEvent, SetAction, GetJob). The coordinator is never needed for the
// job to go on: every call has a short deadline, and a failed one is logged (once a minute at
// most) and reported to the caller, never thrown.
//
// Thread safety: one thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "launcher/coordinator/client.h"
#include "launcher/elastic/child_process.h"

namespace kiln::elastic {

namespace pb = ::kiln::coord::v1;

class LocalCoordinator {
 public:
  // Starts `kiln coordinator --listen LISTEN --state-dir STATE_DIR` and waits until it serves.
  // Its token is STATE_DIR/token (generated, mode 0600, when absent); its log STATE_DIR/log.
  LocalCoordinator(const std::string& kiln, const std::string& listen,
                   const std::string& state_dir);
  // SIGTERM, then SIGKILL after 10 s.
  ~LocalCoordinator();

  const std::string& address() const { return address_; }
  const std::string& token() const { return token_; }
  const std::string& token_file() const { return token_file_; }
  const std::string& log_path() const { return log_path_; }
  int http_port() const { return http_port_; }
  bool running() { return !process_->poll(); }

 private:
  std::string address_, token_, token_file_, log_path_;
  int http_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

class CoordinatorLink {
 public:
  CoordinatorLink(coord::ClientOptions options, std::string job);

  const std::string& address() const { return o_.address; }
  const std::string& job() const { return job_; }
  // The new generation's number, or nullopt when the call failed.
  std::optional<int64_t> start_generation(int world, pb::Cause cause, const std::string& reason,
                                          const std::string& checkpoint_root);
  bool record_event(const std::string& kind, const std::string& message);
  bool set_action(pb::Action action, const std::string& reason);
  std::optional<pb::JobStatus> get_job(double timeout_s = 1.0);
  // Whether the latest call succeeded.
  bool reachable() const { return reachable_; }

 private:
  void failed(const char* call, const grpc::Status& s);

  coord::ClientOptions o_;
  std::string job_;
  std::unique_ptr<pb::Coordinator::Stub> stub_;
  bool reachable_ = true;
  std::chrono::steady_clock::time_point last_log_{};
};

}  // namespace kiln::elastic
