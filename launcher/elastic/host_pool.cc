// Host list, probes and blacklist of the supervisor.
#include "launcher/elastic/host_pool.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/log.h"

namespace kiln::elastic {

namespace {

constexpr double kDiscoveryTimeout = 30;

std::string last_lines(const std::string& text, size_t max_chars = 400) {
  std::string s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.size() > max_chars) s = "..." + s.substr(s.size() - max_chars);
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

std::vector<std::string> probe_argv(const std::vector<std::string>& agent, const std::string& host,
                                    double timeout_s) {
  std::vector<std::string> argv = agent;
  const std::string& prog = agent.front();
  if (agent.size() == 1 && (prog == "ssh" || (prog.size() > 4 && prog.substr(prog.size() - 4) ==
                                                                     "/ssh"))) {
    // No password prompt can block a probe, and a dead host fails within the probe's time.
    argv.insert(argv.end(), {"-o", "BatchMode=yes", "-o",
                             fmt::format("ConnectTimeout={}", std::max(1, static_cast<int>(
                                                                              timeout_s)))});
  }
  argv.push_back(host);
  argv.push_back("true");
  return argv;
}

}  // namespace

HostPool::HostPool(HostPoolOptions o) : o_(std::move(o)) {
  if (o_.rsh_agent.empty()) o_.rsh_agent = {"ssh"};
}

HostPool::~HostPool() = default;

void HostPool::load(double now) {
  if (!o_.hostfile.empty()) {
    reload_hostfile();                     // remembers the version read
    listed_ = read_hostfile(o_.hostfile);  // throws with the file and line
  } else if (!o_.discover_script.empty()) {
    ChildProcess p(ChildOptions{{"/bin/sh", "-c", o_.discover_script}, {}, nullptr, "", 0});
    if (!p.wait_for(kDiscoveryTimeout)) {
      p.kill_session();
      p.wait_for(5);
      KILN_FAIL("--discover-hosts '{}' did not finish within {} s", o_.discover_script,
                kDiscoveryTimeout);
    }
    const std::string out = p.output();
    KILN_CHECK(p.exit_code() == 0, "--discover-hosts '{}' failed ({}): {}", o_.discover_script,
               p.describe_exit(), last_lines(out));
    listed_ = parse_hosts(out, "the output of --discover-hosts '" + o_.discover_script + "'");
    last_discovery_ = now;
  } else {
    listed_ = {HostSlots{"localhost", o_.local_slots}};
  }
  set_listed(listed_, now);
}

void HostPool::probe_all(double now) {
  for (const HostSlots& h : listed_) {
    if (!is_local_host(h.name)) start_probe(h.name, now);
  }
  std::vector<std::string> unreachable;
  for (auto& [host, probe] : probes_) {
    if (!probe.process->wait_for(o_.probe_timeout_s)) {
      probe.process->kill_session();
      probe.process->wait_for(5);
      unreachable.push_back(fmt::format("{} (no answer within {} s)", host, o_.probe_timeout_s));
    } else if (probe.process->exit_code() != 0) {
      unreachable.push_back(fmt::format("{} ({})", host, probe_failure(probe)));
    } else {
      state_[host].reach = Reach::kYes;
      state_[host].probed_at = now;
    }
  }
  probes_.clear();
  if (!unreachable.empty()) {
    std::string list;
    for (const std::string& u : unreachable) list += (list.empty() ? "" : "; ") + u;
    std::string agent;
    for (const std::string& a : o_.rsh_agent) agent += a + " ";
    KILN_FAIL("unreachable host(s): {}. The probe is what mpirun does to start a rank there: "
              "'{}HOST true'. Fix the host or its ssh access, or remove it from the {}",
              list, agent, o_.hostfile.empty() ? "discovery output" : "hostfile " + o_.hostfile);
  }
}

void HostPool::set_listed(std::vector<HostSlots> hosts, double now) {
  (void)now;
  for (const HostSlots& h : hosts) {
    auto [it, added] = state_.try_emplace(h.name);
    if (added && is_local_host(h.name)) {
      it->second.reach = Reach::kYes;
      it->second.reprobe = false;
    }
  }
  listed_ = std::move(hosts);
}

bool HostPool::reload_hostfile() {
  struct stat st {};
  if (::stat(o_.hostfile.c_str(), &st) != 0) return false;
  const std::string stamp =
      fmt::format("{}:{}.{}", st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  if (stamp == hostfile_stamp_) return false;
  hostfile_stamp_ = stamp;
  return true;
}

bool HostPool::poll_discovery(double now) {
  if (discovery_) {
    const bool done = discovery_->poll();
    if (!done && now - discovery_started_ < kDiscoveryTimeout) return false;
    if (!done) {
      discovery_->kill_session();
      discovery_->wait_for(2);
      KILN_LOG_WARN("launch", "--discover-hosts '{}' did not finish within {} s; keeping the "
                    "hosts it printed before", o_.discover_script, kDiscoveryTimeout);
      discovery_.reset();
      return false;
    }
    const std::string out = discovery_->output();
    const int code = discovery_->exit_code();
    const std::string how = discovery_->describe_exit();
    discovery_.reset();
    if (code != 0) {
      const std::string w = fmt::format("--discover-hosts '{}' failed ({}): {}; keeping the hosts "
                                        "it printed before", o_.discover_script, how,
                                        last_lines(out));
      if (w != last_warning_) KILN_LOG_WARN("launch", "{}", w);
      last_warning_ = w;
      return false;
    }
    try {
      std::vector<HostSlots> hosts = parse_hosts(out, "the output of --discover-hosts");
      if (hosts == listed_) return false;
      KILN_LOG_INFO("launch", "discovered hosts: {} (were: {})", describe_hosts(hosts),
                    describe_hosts(listed_));
      set_listed(std::move(hosts), now);
      return true;
    } catch (const Error& e) {
      if (e.message() != last_warning_) {
        KILN_LOG_WARN("launch", "{}; keeping the hosts it printed before", e.message());
      }
      last_warning_ = e.message();
      return false;
    }
  }
  if (now - last_discovery_ < o_.discover_interval_s) return false;
  last_discovery_ = now;
  discovery_started_ = now;
  try {
    discovery_ = std::make_unique<ChildProcess>(
        ChildOptions{{"/bin/sh", "-c", o_.discover_script}, {}, nullptr, "", 0});
  } catch (const Error& e) {
    KILN_LOG_WARN("launch", "cannot run --discover-hosts: {}", e.message());
  }
  return false;
}

void HostPool::start_probe(const std::string& host, double now) {
  if (probes_.count(host)) return;
  try {
    Probe p;
    p.process = std::make_unique<ChildProcess>(ChildOptions{
        probe_argv(o_.rsh_agent, host, o_.probe_timeout_s), {}, nullptr, "", 0});
    p.started = now;
    probes_.emplace(host, std::move(p));
    state_[host].reprobe = false;
  } catch (const Error& e) {
    KILN_FAIL("cannot probe host {} with the rsh agent: {}", host, e.message());
  }
}

std::string HostPool::probe_failure(Probe& p) const {
  const std::string out = last_lines(p.process->output());
  return out.empty() ? p.process->describe_exit() : p.process->describe_exit() + ": " + out;
}

bool HostPool::poll_probes(double now) {
  bool changed = false;
  for (auto it = probes_.begin(); it != probes_.end();) {
    Probe& p = it->second;
    const bool done = p.process->poll();
    if (!done && now - p.started < o_.probe_timeout_s) {
      ++it;
      continue;
    }
    State& st = state_[it->first];
    const Reach before = st.reach;
    std::string why;
    if (!done) {
      p.process->kill_session();
      p.process->wait_for(2);
      why = fmt::format("no answer within {} s", o_.probe_timeout_s);
    } else if (p.process->exit_code() != 0) {
      why = probe_failure(p);
    }
    st.reach = why.empty() ? Reach::kYes : Reach::kNo;
    st.probed_at = now;
    if (st.reach != before) {
      changed = true;
      if (st.reach == Reach::kYes) {
        KILN_LOG_INFO("launch", "host {} answers{}", it->first,
                      now < st.blacklisted_until
                          ? fmt::format(" (blacklisted for {:.0f} s more)",
                                        st.blacklisted_until - now)
                          : "");
      } else {
        KILN_LOG_WARN("launch", "host {} does not answer: {}", it->first, why);
      }
    }
    it = probes_.erase(it);
  }
  return changed;
}

bool HostPool::update(double now) {
  bool changed = false;
  try {
    if (!o_.hostfile.empty() && reload_hostfile()) {
      try {
        std::vector<HostSlots> hosts = read_hostfile(o_.hostfile);
        if (!(hosts == listed_)) {
          KILN_LOG_INFO("launch", "hostfile {} changed: {} (was: {})", o_.hostfile,
                        describe_hosts(hosts), describe_hosts(listed_));
          set_listed(std::move(hosts), now);
          changed = true;
        }
      } catch (const Error& e) {
        KILN_LOG_WARN("launch", "{}; keeping the hosts read before", e.message());
      }
    }
    if (!o_.discover_script.empty()) changed |= poll_discovery(now);
    changed |= poll_probes(now);
    for (const HostSlots& h : listed_) {
      State& st = state_[h.name];
      if (is_local_host(h.name) || probes_.count(h.name)) continue;
      const bool due = st.reprobe || (st.reach == Reach::kNo &&
                                      now - st.probed_at >= o_.probe_interval_s);
      if (due) start_probe(h.name, now);
    }
    for (const auto& [host, st] : state_) {
      // A cool-down that just ended changes what is usable.
      if (st.blacklisted_until <= now && st.blacklisted_until > now - 1.0) changed = true;
    }
  } catch (const std::exception& e) {
    KILN_LOG_WARN("launch", "host bookkeeping: {}", e.what());
  }
  return changed;
}

std::vector<HostSlots> HostPool::usable(double now) const {
  std::vector<HostSlots> out;
  for (const HostSlots& h : listed_) {
    auto it = state_.find(h.name);
    if (it == state_.end()) continue;
    if (it->second.reach == Reach::kYes && it->second.blacklisted_until <= now) out.push_back(h);
  }
  return out;
}

std::vector<HostSlots> HostPool::blacklisted_but_reachable(double now) const {
  std::vector<HostSlots> out;
  for (const HostSlots& h : listed_) {
    auto it = state_.find(h.name);
    if (it == state_.end()) continue;
    const State& st = it->second;
    if (st.blacklisted_until > now && st.reach == Reach::kYes &&
        st.probed_at >= st.blacklisted_at) {
      out.push_back(h);
    }
  }
  return out;
}

void HostPool::blacklist(const std::string& host, double now, const std::string& why) {
  State& st = state_[host];
  st.blacklisted_at = now;
  st.blacklisted_until = now + o_.cooldown_s;
  KILN_LOG_WARN("launch", "host {} blacklisted for {:.0f} s: {}", host, o_.cooldown_s, why);
  if (is_local_host(host)) {
    st.probed_at = now;  // the local machine is there by definition
  } else {
    st.reach = Reach::kUnknown;
    st.reprobe = true;
  }
}

bool HostPool::is_blacklisted(const std::string& host, double now) const {
  auto it = state_.find(host);
  return it != state_.end() && it->second.blacklisted_until > now;
}

}  // namespace kiln::elastic
