// mpirun command lines and failure reports.
#include "launcher/elastic/mpirun_command.h"

#include <regex>

namespace kiln::elastic {

std::vector<std::string> mpirun_argv(const RankCommand& c, const Placement& p, int64_t generation,
                                     const std::vector<std::string>& env_names) {
  std::vector<std::string> a = {c.mpirun, "-np", std::to_string(p.world), "--host",
                                p.mpirun_hosts()};
  // After a rank dies, mpirun sends the others SIGTERM and, a second later, SIGKILL; that grace
  // buys nothing (a rank whose peer is gone cannot finish its step, and a stop that wants a
  // checkpoint is asked for with SIGUSR1) and costs 2 s of detection. The user's own arguments
  // come later and may set it back.
  a.insert(a.end(), {"--mca", "odls_base_sigkill_timeout", "0"});
  if (!c.rsh_agent.empty()) {
    std::string agent;
    for (const std::string& part : c.rsh_agent) agent += (agent.empty() ? "" : " ") + part;
    a.insert(a.end(), {"--mca", "plm_rsh_agent", agent});
  }
  a.insert(a.end(), c.mpirun_args.begin(), c.mpirun_args.end());
  for (const std::string& name : env_names) a.insert(a.end(), {"-x", name});
  a.insert(a.end(), {c.kiln, "train"});
  if (!c.config.empty()) a.insert(a.end(), {"--config", c.config});
  for (const std::string& s : c.sets) a.insert(a.end(), {"--set", s});
  a.insert(a.end(), {"--set", "coordinator.generation=" + std::to_string(generation), "--resume",
                     "auto"});
  return a;
}

bool is_one_shot_hook(const std::string& name) {
  return name == "KILN_DEBUG_HANG_AT_STEP" || name == "KILN_DEBUG_HANG_RANK" ||
         name == "KILN_DEBUG_NAN_AT_STEP" || name == "KILN_DEBUG_STOP_AT_STEP";
}

std::vector<std::string> mpirun_env(const std::vector<std::string>& base, bool debug_hooks,
                                    bool as_root, std::vector<std::string>* forwarded) {
  std::vector<std::string> env;
  forwarded->clear();
  bool binding_set = false;
  for (const std::string& kv : base) {
    const std::string name = kv.substr(0, kv.find('='));
    if (name == "OMPI_MCA_hwloc_base_binding_policy") binding_set = true;
    if (!debug_hooks && is_one_shot_hook(name)) continue;
    if (as_root && name.rfind("OMPI_ALLOW_RUN_AS_ROOT", 0) == 0) continue;  // set below
    if (name.rfind("KILN_", 0) == 0) forwarded->push_back(name);
    env.push_back(kv);
  }
  // Open MPI binds each rank to one core when there are at most two ranks; a rank sizes its
  // thread pool to the node's cores divided by the ranks on it, so it would crowd them onto
  // one. Unbound by default; `--bind-to ...` after -- (command line beats environment) or the
  // variable set by the user still decide.
  if (!binding_set) env.push_back("OMPI_MCA_hwloc_base_binding_policy=none");
  if (as_root) {
    env.push_back("OMPI_ALLOW_RUN_AS_ROOT=1");
    env.push_back("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1");
  }
  return env;
}

std::optional<RankDeath> parse_rank_death(const std::string& line) {
  static const std::regex re(R"(process rank (\d+) with PID \d+ on node \S+ exited on signal (\d+))");
  std::smatch m;
  if (!std::regex_search(line, m, re)) return std::nullopt;
  return RankDeath{std::stoi(m[1]), std::stoi(m[2])};
}

bool is_failure_report(const std::string& line) {
  for (const char* marker : {"mpirun noticed", "exited on signal", "Exit code:", "Process name:",
                             "lost communication", "returned a non-zero exit code",
                             "ORTE was unable", "mpirun was unable", "watchdog:"}) {
    if (line.find(marker) != std::string::npos) return true;
  }
  return false;
}

}  // namespace kiln::elastic
