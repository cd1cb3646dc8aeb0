// What `kiln launch` runs for a generation: the mpirun command line (hosts and slots of the
// placement, the rsh agent, the user's own mpirun arguments, -x for every KILN_* variable) around
// `kiln train ... --resume auto`, the environment mpirun gets, and the reading of mpirun's own
// failure report (which rank died of which signal).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "launcher/elastic/world_plan.h"

namespace kiln::elastic {

struct RankCommand {
  std::string mpirun = "mpirun";
  std::vector<std::string> mpirun_args;  // the user's, passed through before the program
  std::vector<std::string> rsh_agent;    // empty: mpirun's own default (ssh)
  std::string kiln;                      // the kiln binary, at the same path on every host
  std::string config;                    // empty: the embedded default
  std::vector<std::string> sets;         // --set KEY=VALUE for every rank, in order
};

// mpirun's argv for one generation: ranks placed as `p` says, `env_names` forwarded with -x, and
// `generation` told to every rank (coordinator.generation).
std::vector<std::string> mpirun_argv(const RankCommand& c, const Placement& p, int64_t generation,
                                     const std::vector<std::string>& env_names);

// The debug hooks that fire once at a step (hang, NaN, stop): kiln launch passes them to its
// first generation only, so that a restart does not meet the same hang again. Others (slow
// steps) reach every generation.
bool is_one_shot_hook(const std::string& name);

// mpirun's environment from `base` (K=V entries): without the one-shot debug hooks unless
// `debug_hooks`, ranks left unbound to cores unless `base` sets Open MPI's binding policy, plus
// the Open MPI permission to run as root when `as_root`. `forwarded` receives
// the KILN_* names to pass with -x (remote ranks do not inherit them).
std::vector<std::string> mpirun_env(const std::vector<std::string>& base, bool debug_hooks,
                                    bool as_root, std::vector<std::string>* forwarded);

// mpirun's report of a rank that died of a signal ("mpirun noticed that process rank 1 with
// PID 4242 on node n1 exited on signal 9 (Killed).").
struct RankDeath {
  int rank = -1;
  int signal = 0;
};
std::optional<RankDeath> parse_rank_death(const std::string& line);

// Whether a line of mpirun's output belongs to its account of why the job ended (kept for the
// failure's description).
bool is_failure_report(const std::string& line);

}  // namespace kiln::elastic
