// The supervisor's view of the hosts: the list (a hostfile re-read when it changes, the output
// of a discovery script run periodically, or the local machine alone), which hosts answer (a
// probe through the rsh agent, `AGENT HOST true`, as mpirun would reach them), and which are
// blacklisted after a failure, each until its cool-down ends. A host is usable when it is
// listed, not blacklisted and its latest probe succeeded; the local machine needs no probe.
//
// Probes and the discovery script run as child processes polled by update(), so the
// supervisor's loop never waits on a host that does not answer. Thread safety: one thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "launcher/elastic/child_process.h"
#include "launcher/elastic/hosts.h"

namespace kiln::elastic {

struct HostPoolOptions {
  std::string hostfile;         // re-read when its size or time changes
  std::string discover_script;  // a shell command printing hosts; run every discover_interval_s
  double discover_interval_s = 5;
  int local_slots = 1;  // without hostfile and script: the local machine with this many slots
  double cooldown_s = 60;
  std::vector<std::string> rsh_agent = {"ssh"};  // a probe runs AGENT... HOST true
  double probe_timeout_s = 10;
  double probe_interval_s = 5;  // an unreachable host is probed again after this
};

class HostPool {
 public:
  explicit HostPool(HostPoolOptions o);
  ~HostPool();

  // Reads the list for the first time. Throws on a malformed hostfile or a failing discovery
  // script.
  void load(double now);
  // Probes every remote host, waiting for the answers; throws naming the unreachable ones.
  void probe_all(double now);
  // Moves the background work on (re-reading, discovery, probes); never throws. Returns true
  // when the usable hosts may have changed.
  bool update(double now);

  const std::vector<HostSlots>& listed() const { return listed_; }
  // Usable hosts, in listed order.
  std::vector<HostSlots> usable(double now) const;
  // Blacklisted hosts whose probe since the blacklisting succeeded: the fallback when the usable
  // hosts cannot hold the smallest world.
  std::vector<HostSlots> blacklisted_but_reachable(double now) const;
  // Keeps `host` out until now + cool-down, and probes it again.
  void blacklist(const std::string& host, double now, const std::string& why);
  bool is_blacklisted(const std::string& host, double now) const;
  // Whether any probe or discovery run is still in flight.
  bool busy() const { return !probes_.empty() || discovery_ != nullptr; }

 private:
  enum class Reach { kUnknown, kYes, kNo };
  struct State {
    Reach reach = Reach::kUnknown;
    double probed_at = -1e18;       // when the latest probe ended
    double blacklisted_until = -1e18;
    double blacklisted_at = -1e18;
    bool reprobe = true;  // a probe is due (new host, blacklisted, cool-down over)
  };
  struct Probe {
    std::unique_ptr<ChildProcess> process;
    double started = 0;
  };

  void set_listed(std::vector<HostSlots> hosts, double now);
  bool reload_hostfile();
  bool poll_discovery(double now);
  void start_probe(const std::string& host, double now);
  bool poll_probes(double now);
  std::string probe_failure(Probe& p) const;

  HostPoolOptions o_;
  std::vector<HostSlots> listed_;
  std::map<std::string, State> state_;
  std::map<std::string, Probe> probes_;
  std::unique_ptr<ChildProcess> discovery_;
  double discovery_started_ = 0, last_discovery_ = -1e18;
  std::string hostfile_stamp_;  // size and time of the hostfile last read
  std::string last_warning_;
};

}  // namespace kiln::elastic
