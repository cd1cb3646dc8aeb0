// `kiln launch`: an elastic, fault-tolerant job - a coordinator (started here unless one is
// given), then generation after generation of `mpirun ... kiln train --resume auto` under the
// supervisor. Everything that can be checked is checked before anything starts: the config, the
// hostfile, the world range against the slots and the global batch, mpirun, every host.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "launcher/commands.h"
#include "launcher/coordinator/auth.h"
#include "launcher/elastic/supervisor.h"

namespace kiln {

namespace {

namespace fs = std::filesystem;
using namespace elastic;

struct LaunchFlags {
  std::string config;
  std::vector<std::string> set;
  int np = 0, min_np = 0, max_np = 0;
  std::string hostfile, discover;
  double discover_interval_s = 5;
  int max_restarts = 3;
  std::string coordinator, coordinator_listen, token_file, job, run_dir;
  std::string rsh_agent, mpirun = "mpirun";
  double heartbeat_timeout_s = 10, step_timeout_s = 600, start_timeout_s = 600;
  double kill_grace_s = 3, stop_timeout_s = 120, checkpoint_timeout_s = 120;
  double cooldown_s = 60, probe_timeout_s = 10, wait_for_hosts_s = 300;
  std::vector<std::string> mpirun_args;
};

std::string absolute(const std::string& path) {
  std::string s = fs::absolute(path).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::string word;
  for (char c : s) {
    if (c == ' ' || c == '\t') {
      if (!word.empty()) out.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) out.push_back(word);
  return out;
}

bool executable_on_path(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// The address of this machine on the route to `host`: what ranks there can reach the
// coordinator at.
std::string local_address_towards(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), "9", &hints, &res);
  KILN_CHECK(rc == 0, "cannot resolve host {}: {}", host, ::gai_strerror(rc));
  std::string out;
  for (addrinfo* a = res; a && out.empty(); a = a->ai_next) {
    const int fd = ::socket(a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t len = sizeof(local);
    char buf[INET6_ADDRSTRLEN] = {};
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
      if (local.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&local)->sin_addr, buf, sizeof(buf));
        out = buf;
      } else if (local.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr, buf,
                    sizeof(buf));
        out = std::string("[") + buf + "]";
      }
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  KILN_CHECK(!out.empty(), "no route from this machine to host {}", host);
  return out;
}

std::string default_job(const LaunchFlags& f, const Config& cfg) {
  if (!f.job.empty()) return f.job;
  if (!cfg.coordinator.job.empty()) return cfg.coordinator.job;
  std::string stem = f.config.empty() ? "cnn_fashion" : fs::path(f.config).stem().string();
  for (char& c : stem) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  }
  return stem.substr(0, 64);
}

int run_launch(const LaunchFlags& f) {
  process_context().world = 0;  // the supervisor is no rank: its log lines say "launch"
  log::refresh_prefix();
  const double t0 =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();

  // Under kiln launch checkpoint.dir defaults to <run folder>/ckpt, so a config may ask for
  // saves without naming it. The job and folders come first (from the config read with saving
  // off), then the config is read again, in full, with that default.
  std::vector<std::string> sets = f.set;
  sets.insert(sets.end(), {"checkpoint.every_steps=0", "checkpoint.every_minutes=0"});
  Config cfg = load_config(f.config, sets);
  SupervisorOptions o;
  o.job = default_job(f, cfg);
  const std::string run_dir = absolute(
      !f.run_dir.empty()            ? f.run_dir
      : !cfg.checkpoint.dir.empty() ? fs::path(absolute(cfg.checkpoint.dir)).parent_path().string()
                                    : "runs/" + o.job);
  o.checkpoint_root = absolute(cfg.checkpoint.dir.empty() ? run_dir + "/ckpt" : cfg.checkpoint.dir);
  sets = f.set;
  if (cfg.checkpoint.dir.empty()) sets.push_back("checkpoint.dir=" + o.checkpoint_root);
  cfg = load_config(f.config, sets);

  const bool listed = !f.hostfile.empty() || !f.discover.empty();
  o.min_np = f.min_np > 0 ? f.min_np : f.np > 0 ? f.np : 1;
  o.max_np = f.max_np > 0 ? f.max_np : f.np > 0 ? f.np : listed ? INT_MAX : o.min_np;
  o.max_restarts = f.max_restarts;
  o.batch = BatchShape{cfg.train.global_batch, cfg.train.micro_batch};
  o.total_steps = cfg.train.steps;
  o.heartbeat_timeout_s = f.heartbeat_timeout_s;
  o.step_timeout_s = f.step_timeout_s;
  o.start_timeout_s = f.start_timeout_s;
  o.kill_grace_s = f.kill_grace_s;
  o.stop_timeout_s = f.stop_timeout_s;
  o.checkpoint_timeout_s = f.checkpoint_timeout_s;
  o.wait_for_hosts_s = f.wait_for_hosts_s;

  HostPoolOptions hp;
  hp.hostfile = f.hostfile;
  hp.discover_script = f.discover;
  hp.discover_interval_s = f.discover_interval_s;
  // Without a hostfile this machine offers a slot per core; more ranks than cores is the
  // user's choice, made in a hostfile (localhost slots=N).
  hp.local_slots = std::max(1u, std::thread::hardware_concurrency());
  hp.cooldown_s = f.cooldown_s;
  hp.probe_timeout_s = f.probe_timeout_s;
  std::string agent = f.rsh_agent;
  if (agent.empty() && std::getenv("OMPI_MCA_plm_rsh_agent")) {
    agent = std::getenv("OMPI_MCA_plm_rsh_agent");
  }
  hp.rsh_agent = split_words(agent.empty() ? "ssh" : agent);
  HostPool hosts(hp);

  // Checks that need no host to answer, then the hosts.
  hosts.load(t0);
  check_world_range(hosts.listed(), o.min_np, o.max_np, o.batch, cfg.where("train.global_batch"));
  KILN_CHECK(executable_on_path(f.mpirun),
             "'{}' is not found or not executable: kiln launch runs the ranks with Open MPI's "
             "mpirun (Debian package openmpi-bin; scripts/setup.sh installs it), or give its "
             "path with --mpirun",
             f.mpirun);
  hosts.probe_all(t0);

  if (cfg.checkpoint.every_steps == 0 && cfg.checkpoint.every_minutes == 0) {
    KILN_LOG_WARN("launch",
                  "checkpoint.every_steps and checkpoint.every_minutes are 0: a failed "
                  "generation restarts from the beginning; set one of them to keep progress");
  }

  char self[PATH_MAX] = {};
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  KILN_CHECK(n > 0, "cannot find the kiln binary's own path: {}", errno_string());
  o.command.kiln = std::string(self, static_cast<size_t>(n));
  o.command.mpirun = f.mpirun;
  o.command.mpirun_args = f.mpirun_args;
  if (!f.rsh_agent.empty()) o.command.rsh_agent = hp.rsh_agent;
  if (!f.config.empty()) o.command.config = absolute(f.config);
  o.command.sets = f.set;

  // The coordinator: the given one, or one of our own under the run folder.
  std::unique_ptr<LocalCoordinator> local;
  coord::ClientOptions client;
  client.address = !f.coordinator.empty() ? f.coordinator : cfg.coordinator.address;
  client.tls_ca = cfg.coordinator.tls_ca;
  client.tls_cert = cfg.coordinator.tls_cert;
  client.tls_key = cfg.coordinator.tls_key;
  if (client.address.empty()) {
    std::string listen = f.coordinator_listen;
    if (listen.empty()) {
      listen = "127.0.0.1:0";
      for (const HostSlots& h : hosts.listed()) {
        if (!is_local_host(h.name)) {
          listen = local_address_towards(h.name) + ":0";
          break;
        }
      }
    }
    local = std::make_unique<LocalCoordinator>(o.command.kiln, listen, run_dir + "/coordinator");
    client.address = local->address();
    client.token = local->token();
  } else {
    client.token = coord::client_token(
        !f.token_file.empty() ? f.token_file : cfg.coordinator.token_file, o.job);
  }
  // Ranks take the token from the environment (forwarded by mpirun -x), so that no token file
  // has to exist on every host.
  ::setenv("KILN_COORDINATOR_TOKEN", client.token.c_str(), 1);
  CoordinatorLink link(client, o.job);
  for (const std::string& s :
       {"checkpoint.dir=" + o.checkpoint_root, "coordinator.address=" + client.address,
        "coordinator.job=" + o.job, std::string("coordinator.token_file=")}) {
    o.command.sets.push_back(s);
  }

  if (local) {
    KILN_LOG_INFO("launch",
                  "coordinator at {} (state and log in {}/coordinator, metrics at "
                  "http://{}:{}/metrics). Watch the job with:\n  {} status --coordinator {} "
                  "--token-file {} --job {}",
                  local->address(), run_dir,
                  local->address().substr(0, local->address().rfind(':')), local->http_port(),
                  o.command.kiln, local->address(), local->token_file(), o.job);
  } else {
    KILN_LOG_INFO("launch", "coordinator at {}; job '{}'", client.address, o.job);
  }
  KILN_LOG_INFO("launch",
                "job '{}': {} steps, global batch {} (micro-batch {}), world {}..{} on "
                "{}, checkpoints in {}, up to {} restart(s) after failures",
                o.job, o.total_steps, o.batch.global_batch, o.batch.micro_batch, o.min_np,
                o.max_np == INT_MAX ? std::string("slots") : std::to_string(o.max_np),
                describe_hosts(hosts.listed()), o.checkpoint_root, o.max_restarts);

  Supervisor supervisor(std::move(o), hosts, &link);
  return supervisor.run();
}

}  // namespace

CommandRunner add_launch_command(CLI::App& app) {
  auto f = std::make_shared<LaunchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "launch",
      "Run an elastic, fault-tolerant job: a coordinator, then mpirun kiln train, restarted on "
      "failures and resized as hosts come and go (arguments after -- go to mpirun)");
  cmd->add_option("-c,--config", f->config,
                  "YAML config (default: the embedded configs/cnn_fashion.yaml)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", f->set, "override a config key for every rank (repeatable)")
      ->allow_extra_args(false);  // one key=value per --set: a following -- ends the flags
  cmd->add_option("--np", f->np, "ranks (a fixed world size; default 1 without hosts)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--min-np", f->min_np, "smallest world the job may shrink to")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-np", f->max_np,
                  "largest world the job may grow to (default: --np, or every slot of the hosts)")
      ->check(CLI::PositiveNumber);
  CLI::Option* hostfile =
      cmd->add_option("--hostfile", f->hostfile,
                      "hosts and slots, a line 'HOST slots=N' each; re-read when it changes")
          ->check(CLI::ExistingFile);
  cmd->add_option("--discover-hosts", f->discover,
                  "shell command printing the hosts ('HOST:N' or 'HOST slots=N' lines), run "
                  "every --discover-interval seconds")
      ->excludes(hostfile);
  cmd->add_option("--discover-interval", f->discover_interval_s, "seconds between discoveries")
      ->capture_default_str();
  cmd->add_option("--max-restarts", f->max_restarts,
                  "failures to recover from before giving up (membership changes are free)")
      ->capture_default_str();
  cmd->add_option("--coordinator", f->coordinator,
                  "HOST:PORT of a running kiln coordinator (default: coordinator.address, else "
                  "start one for the job under the run folder)");
  cmd->add_option("--coordinator-listen", f->coordinator_listen,
                  "HOST:PORT for the coordinator started here (default: 127.0.0.1:0, or this "
                  "machine's address towards the first remote host)");
  cmd->add_option("--token-file", f->token_file,
                  "token file of the --coordinator (default: coordinator.token_file, else "
                  "KILN_COORDINATOR_TOKEN)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--job", f->job,
                  "job id at the coordinator (default: coordinator.job, else the config's name)");
  cmd->add_option("--run-dir", f->run_dir,
                  "folder of the coordinator's state and, unless checkpoint.dir says otherwise, "
                  "the checkpoints (default: checkpoint.dir's parent, else runs/JOB)");
  cmd->add_option("--rsh-agent", f->rsh_agent,
                  "command mpirun starts remote daemons with, also used to probe hosts (default: "
                  "OMPI_MCA_plm_rsh_agent, else ssh)");
  cmd->add_option("--mpirun", f->mpirun, "the mpirun program")->capture_default_str();
  cmd->add_option("--heartbeat-timeout", f->heartbeat_timeout_s,
                  "seconds without a heartbeat after which a rank's host has failed")
      ->capture_default_str();
  cmd->add_option("--step-timeout", f->step_timeout_s,
                  "seconds without step progress while training after which the job hangs (0 = "
                  "off; the collective watchdog, comm.timeout_s, catches most hangs first)")
      ->capture_default_str();
  cmd->add_option("--start-timeout", f->start_timeout_s,
                  "seconds from a generation's launch to its first step")
      ->capture_default_str();
  cmd->add_option("--kill-grace", f->kill_grace_s,
                  "seconds between SIGTERM to mpirun and SIGKILL to what is left")
      ->capture_default_str();
  cmd->add_option("--stop-timeout", f->stop_timeout_s,
                  "seconds a requested stop (SIGTERM/SIGINT) may take to checkpoint and exit")
      ->capture_default_str();
  cmd->add_option("--checkpoint-timeout", f->checkpoint_timeout_s,
                  "seconds to wait for the checkpoint that precedes a resize")
      ->capture_default_str();
  cmd->add_option("--blacklist-cooldown", f->cooldown_s,
                  "seconds a failed host stays out (used earlier only when the job cannot run "
                  "without it)")
      ->capture_default_str();
  cmd->add_option("--probe-timeout", f->probe_timeout_s,
                  "seconds a host has to answer a probe (rsh agent: HOST true)")
      ->capture_default_str();
  cmd->add_option("--wait-for-hosts", f->wait_for_hosts_s,
                  "seconds to wait for enough usable hosts before giving up")
      ->capture_default_str();
  cmd->add_option("mpirun_args", f->mpirun_args, "arguments for mpirun (after --)");
  return [f] { return run_launch(*f); };
}

}  // namespace kiln
