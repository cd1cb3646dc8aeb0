// The elastic supervisor of `kiln launch` (DESIGN decision 10): runs one mpirun per generation
// and watches it - mpirun's exit (a rank that died), the ranks' heartbeat ages at the coordinator
// (a host that went silent), step progress (a hang), the host list (hosts added or removed) and
// stop signals. On a failure it stops the generation (SIGTERM to mpirun, SIGKILL to what is left
// of its session after a grace period), blacklists the host at fault, picks the largest world
// the usable hosts allow and relaunches with --resume auto; a failure uses up one restart of the
// budget. When hosts are added it asks the job to checkpoint now, waits for the commit, and
// relaunches larger; membership changes are free. A stop signal is passed on (SIGUSR1 through
// mpirun, and a STOP action at the coordinator): the ranks checkpoint at the next step boundary
// and exit, and nothing is restarted.
//
// Thread safety: run() on one thread; the signal handlers only set a flag.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "launcher/elastic/child_process.h"
#include "launcher/elastic/coordinator_link.h"
#include "launcher/elastic/host_pool.h"
#include "launcher/elastic/mpirun_command.h"
#include "launcher/elastic/world_plan.h"

namespace kiln::elastic {

struct SupervisorOptions {
  std::string job;
  int min_np = 1, max_np = 1;
  int max_restarts = 3;  // failures tolerated; membership changes are not counted
  BatchShape batch;
  int64_t total_steps = 0;
  std::string checkpoint_root;  // absolute checkpoint.dir of the job
  RankCommand command;
  double poll_s = 0.25;               // mpirun exit and signals
  double status_every_s = 0.5;        // GetJob
  double heartbeat_timeout_s = 10;    // a rank silent this long has failed
  double step_timeout_s = 600;        // no step progress while training (0 = off)
  double start_timeout_s = 600;       // from mpirun's start to the first step
  double kill_grace_s = 3;            // SIGTERM to mpirun ... SIGKILL to its session
  double stop_timeout_s = 120;        // a requested stop may take this long
  double checkpoint_timeout_s = 120;  // waiting for the checkpoint before a resize
  double wait_for_hosts_s = 300;      // too few usable hosts: wait this long for more
};

// Exit codes of `kiln launch`.
inline constexpr int kExitFinished = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitStopped = 75;  // stopped on request, checkpoint saved (EX_TEMPFAIL)

class Supervisor {
 public:
  // `coordinator` may be null (no heartbeat or progress checks then).
  Supervisor(SupervisorOptions o, HostPool& hosts, CoordinatorLink* coordinator);
  ~Supervisor();
  // Installs the SIGINT/SIGTERM handlers and supervises generations until the job finishes,
  // stops on request, or fails more often than max_restarts. Returns the exit code.
  int run();

 private:
  enum class End { kFinished, kStopped, kFailed, kResize };
  struct Outcome {
    End end = End::kFailed;
    std::string reason;
    std::vector<std::string> blame;  // hosts at fault
  };

  std::optional<Placement> wait_for_placement();
  void launch(const Placement& p, int64_t generation, bool debug_hooks);
  Outcome supervise(const Placement& p, int64_t generation);
  // SIGTERM to mpirun's process group, then after `grace_s` SIGKILL to its whole session.
  void teardown(double grace_s);
  void forward_stop(const std::string& why);
  void on_output(const std::string& line, bool is_stderr);
  bool reached_the_end() const;
  void event(const std::string& kind, const std::string& message);
  Outcome failed(std::string reason, std::vector<std::string> blame = {});

  SupervisorOptions o_;
  HostPool& hosts_;
  CoordinatorLink* coordinator_;
  std::unique_ptr<ChildProcess> mpirun_;
  int64_t generation_ = -1;
  bool stop_forwarded_ = false;
  int signals_handled_ = 0;

  std::mutex report_mu_;  // mpirun's output threads write, the loop reads
  std::vector<std::string> report_;
  std::optional<RankDeath> death_;
};

}  // namespace kiln::elastic
