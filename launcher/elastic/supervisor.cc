// The elastic supervisor's loop.
#include "launcher/elastic/supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <set>
#include <thread>

#include "core/checkpoint/layout.h"
#include "core/log.h"

extern char** environ;

namespace kiln::elastic {

namespace {

std::atomic<int> g_signals{0};
std::atomic<int> g_last_signal{0};

void on_signal(int sig) {
  g_last_signal.store(sig);
  g_signals.fetch_add(1);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

const char* cause_word(pb::Cause c) {
  switch (c) {
    case pb::CAUSE_START: return "start";
    case pb::CAUSE_FAILURE: return "failure";
    case pb::CAUSE_MEMBERSHIP: return "membership";
    default: return "other";
  }
}

}  // namespace

Supervisor::Supervisor(SupervisorOptions o, HostPool& hosts, CoordinatorLink* coordinator)
    : o_(std::move(o)), hosts_(hosts), coordinator_(coordinator) {}

Supervisor::~Supervisor() {
  if (mpirun_) teardown(0);
}

void Supervisor::event(const std::string& kind, const std::string& message) {
  if (coordinator_) coordinator_->record_event(kind, message);
}

Supervisor::Outcome Supervisor::failed(std::string reason, std::vector<std::string> blame) {
  return Outcome{End::kFailed, std::move(reason), std::move(blame)};
}

void Supervisor::on_output(const std::string& line, bool is_stderr) {
  const std::string out = line + "\n";
  (void)!::write(is_stderr ? STDERR_FILENO : STDOUT_FILENO, out.data(), out.size());
  if (!is_failure_report(line)) return;
  std::lock_guard<std::mutex> lock(report_mu_);
  if (!death_) death_ = parse_rank_death(line);
  if (report_.size() < 8) report_.push_back(line);
}

void Supervisor::launch(const Placement& p, int64_t generation, bool debug_hooks) {
  std::vector<std::string> base;
  for (char** e = environ; *e; ++e) base.emplace_back(*e);
  std::vector<std::string> forwarded;
  std::vector<std::string> env = mpirun_env(base, debug_hooks, ::geteuid() == 0, &forwarded);
  {
    std::lock_guard<std::mutex> lock(report_mu_);
    report_.clear();
    death_.reset();
  }
  std::vector<std::string> argv = mpirun_argv(o_.command, p, generation, forwarded);
  KILN_LOG_DEBUG("launch", "{}", join(argv, " "));
  mpirun_ = std::make_unique<ChildProcess>(ChildOptions{
      std::move(argv), std::move(env),
      [this](const std::string& line, bool is_stderr) { on_output(line, is_stderr); }, "",
      SIGTERM});
}

void Supervisor::teardown(double grace_s) {
  if (!mpirun_) return;
  const double t0 = now_s();
  const bool running = !mpirun_->poll();
  if (running) {
    mpirun_->signal_group(SIGTERM);
    mpirun_->wait_for(grace_s);
  }
  const int left = mpirun_->kill_session();
  mpirun_->wait_for(10);
  mpirun_.reset();  // joins the output threads
  log::get("launch")->log(running || left > 0 ? spdlog::level::info : spdlog::level::debug,
                          "generation {} stopped: teardown took {:.2f} s{}", generation_,
                          now_s() - t0,
                          left > 0 ? fmt::format(" ({} process(es) killed with SIGKILL)", left)
                                   : "");
}

void Supervisor::forward_stop(const std::string& why) {
  stop_forwarded_ = true;
  KILN_LOG_WARN("launch", "{}: the job checkpoints at the next step boundary and stops (a second "
                "signal stops it at once)", why);
  // mpirun passes SIGUSR1 on to every rank; the STOP action reaches them too should it not.
  if (mpirun_ && !mpirun_->poll()) ::kill(mpirun_->pid(), SIGUSR1);
  if (coordinator_) coordinator_->set_action(pb::ACTION_STOP, why);
  event("stop", why);
}

bool Supervisor::reached_the_end() const {
  int64_t newest = -1;
  for (const CheckpointDir& c : list_checkpoints(o_.checkpoint_root)) {
    if (c.committed) newest = c.step;
  }
  return newest >= o_.total_steps;
}

std::optional<Placement> Supervisor::wait_for_placement() {
  const double deadline = now_s() + o_.wait_for_hosts_s;
  std::string waiting;
  for (;;) {
    const double now = now_s();
    hosts_.update(now);
    const std::vector<HostSlots> usable = hosts_.usable(now);
    if (auto p = plan_world(usable, o_.min_np, o_.max_np, o_.batch)) return p;
    // Blacklisted hosts that answer come back early rather than leave the job below min_np.
    const std::vector<HostSlots> fallback = hosts_.blacklisted_but_reachable(now);
    if (!fallback.empty() && !hosts_.busy()) {
      std::vector<HostSlots> both;
      std::vector<std::string> names;
      for (const HostSlots& h : hosts_.listed()) {
        bool in_usable = false, in_fallback = false;
        for (const HostSlots& u : usable) in_usable |= u.name == h.name;
        for (const HostSlots& f : fallback) in_fallback |= f.name == h.name;
        if (in_usable || in_fallback) both.push_back(h);
        if (in_fallback) names.push_back(h.name);
      }
      if (auto p = plan_world(both, o_.min_np, o_.max_np, o_.batch)) {
        KILN_LOG_WARN("launch", "using blacklisted host(s) {} before the cool-down ends: without "
                      "them {} slot(s) are usable, fewer than --min-np {}", join(names),
                      total_slots(usable), o_.min_np);
        return p;
      }
    }
    const std::string w =
        fmt::format("waiting for hosts: {} slot(s) usable ({}), the job needs {}{}",
                    total_slots(usable), describe_hosts(usable), o_.min_np,
                    o_.min_np == o_.max_np ? "" : " at least");
    if (w != waiting) {
      KILN_LOG_WARN("launch", "{} (giving up in {:.0f} s)", w, deadline - now);
      waiting = w;
    }
    if (g_signals.load() > signals_handled_ || now > deadline) return std::nullopt;
    sleep_s(o_.poll_s);
  }
}

Supervisor::Outcome Supervisor::supervise(const Placement& p, int64_t generation) {
  const double start = now_s();
  double next_status = start, next_hosts = start + 1;
  int64_t last_step = -1;
  double last_progress = start;
  bool training = false;
  double stop_deadline = 0;
  bool resizing = false;
  double resize_deadline = 0;
  std::string resize_reason;

  for (;;) {
    sleep_s(o_.poll_s);
    const double now = now_s();

    if (g_signals.load() > signals_handled_) {
      signals_handled_ = g_signals.load();
      const char* name = g_last_signal.load() == SIGINT ? "SIGINT" : "SIGTERM";
      if (!stop_forwarded_) {
        forward_stop(fmt::format("{} received", name));
        stop_deadline = now + o_.stop_timeout_s;
      } else {
        KILN_LOG_WARN("launch", "second {}: stopping the job now, without a checkpoint", name);
        teardown(o_.kill_grace_s);
        return Outcome{End::kStopped, "stopped at once on a second signal", {}};
      }
    }

    if (mpirun_->poll()) {
      const int code = mpirun_->exit_code();
      const std::string how = mpirun_->describe_exit();
      // Processes that outlived mpirun go now, so that its output ends and its last lines (the
      // failure report) are read before they are looked at.
      const int left = mpirun_->kill_session();
      mpirun_->output();
      if (left > 0) {
        KILN_LOG_INFO("launch", "generation {}: {} process(es) outlived mpirun and were killed",
                      generation, left);
      }
      if (code == 0) {
        if (reached_the_end()) return Outcome{End::kFinished, "all steps done", {}};
        return Outcome{End::kStopped,
                       stop_forwarded_ ? "stopped on request"
                                       : "the ranks stopped before the last step (a rank was "
                                         "asked to stop: SIGTERM, SIGINT, SIGUSR1 or a STOP "
                                         "action)",
                       {}};
      }
      std::lock_guard<std::mutex> lock(report_mu_);
      if (stop_forwarded_) {
        return Outcome{End::kStopped, fmt::format("mpirun ended with {} while stopping", how), {}};
      }
      std::string reason = fmt::format("mpirun exited with {}", how);
      std::vector<std::string> blame;
      if (death_) {
        const std::string& host = p.host_of_rank(death_->rank);
        reason += fmt::format(": rank {} on {} died of signal {}", death_->rank, host,
                              death_->signal);
        blame.push_back(host);
      } else if (!report_.empty()) {
        reason += fmt::format(": {}", report_.front());
      }
      return failed(reason, blame);
    }

    if (stop_forwarded_) {
      if (now > stop_deadline) {
        KILN_LOG_ERROR("launch", "the job did not stop within {:.0f} s of the request; stopping "
                       "it now", o_.stop_timeout_s);
        teardown(o_.kill_grace_s);
        return Outcome{End::kStopped, "stop request timed out", {}};
      }
      continue;
    }

    if (coordinator_ && now >= next_status) {
      next_status = now + o_.status_every_s;
      std::optional<pb::JobStatus> st = coordinator_->get_job(std::min(1.0, o_.status_every_s * 2));
      if (st && st->generation() == generation && st->members_size() == p.world) {
        std::vector<int> lost;
        double oldest = 0;
        bool all_training = true;
        for (const pb::Member& m : st->members()) {
          if (m.heartbeat_age_s() > o_.heartbeat_timeout_s) {
            lost.push_back(m.rank());
            oldest = std::max(oldest, m.heartbeat_age_s());
          }
          all_training &= m.phase() == pb::PHASE_TRAINING;
        }
        if (!lost.empty()) {
          std::set<std::string> hosts;
          std::string ranks;
          for (int r : lost) {
            hosts.insert(p.host_of_rank(r));
            ranks += fmt::format("{}{}", ranks.empty() ? "" : ",", r);
          }
          const std::vector<std::string> at_fault(hosts.begin(), hosts.end());
          // When every rank went silent at once the fault is more likely between them and the
          // coordinator than in all hosts together: nobody is blacklisted then.
          const bool everyone = static_cast<int>(lost.size()) == p.world;
          return failed(fmt::format("no heartbeat from rank(s) {} on {} for {:.1f} s "
                                    "(--heartbeat-timeout {} s)", ranks, join(at_fault),
                                    oldest, o_.heartbeat_timeout_s),
                        everyone ? std::vector<std::string>{} : at_fault);
        }
        if (st->step() >= 0 && all_training) {
          if (!training) {
            training = true;
            KILN_LOG_INFO("launch", "generation {} is training (step {}, {:.1f} s after launch)",
                          generation, st->step(), now - start);
          }
          if (st->step() != last_step) {
            last_step = st->step();
            last_progress = now;
          } else if (o_.step_timeout_s > 0 && now - last_progress > o_.step_timeout_s) {
            return failed(fmt::format("no step progress for {:.1f} s at step {} "
                                      "(--step-timeout {} s): a rank hangs", now - last_progress,
                                      last_step, o_.step_timeout_s));
          }
        } else {
          last_progress = now;  // evaluating, checkpointing or starting: not a hang
        }
        if (resizing && (!st->has_action() || st->action().action() != pb::ACTION_CHECKPOINT_NOW) &&
            st->has_latest_checkpoint() && st->latest_checkpoint().generation() == generation) {
          KILN_LOG_INFO("launch", "checkpoint of step {} committed; relaunching ({})",
                        st->latest_checkpoint().step(), resize_reason);
          return Outcome{End::kResize, resize_reason, {}};
        }
      }
      if (!training && now - start > o_.start_timeout_s) {
        return failed(fmt::format("generation {} did not train within {:.0f} s of its launch "
                                  "(--start-timeout)", generation, o_.start_timeout_s));
      }
    }

    if (resizing) {
      if (now > resize_deadline) {
        KILN_LOG_WARN("launch", "no checkpoint committed within {:.0f} s of the request; "
                      "relaunching from the last committed one ({})", o_.checkpoint_timeout_s,
                      resize_reason);
        return Outcome{End::kResize, resize_reason, {}};
      }
      continue;
    }

    if (now >= next_hosts) {
      next_hosts = now + 1;
      hosts_.update(now);
      std::vector<std::string> gone;
      for (const HostSlots& h : p.hosts) {
        bool listed = false;
        for (const HostSlots& l : hosts_.listed()) listed |= l.name == h.name && l.slots >= h.slots;
        if (!listed) gone.push_back(h.name);
      }
      std::optional<Placement> better = plan_world(hosts_.usable(now), o_.min_np, o_.max_np,
                                                   o_.batch);
      std::string why;
      if (!gone.empty()) {
        why = fmt::format("host(s) {} left the host list", join(gone));
      } else if (better && better->world > p.world) {
        why = fmt::format("hosts added: world {} -> {} on {}", p.world, better->world,
                          better->mpirun_hosts());
      }
      if (!why.empty() && training) {
        resize_reason = why;
        if (coordinator_ && coordinator_->set_action(pb::ACTION_CHECKPOINT_NOW, why)) {
          KILN_LOG_INFO("launch", "{}: asking the job to checkpoint now, then relaunching", why);
          event("resize", why + ": checkpoint requested");
          resizing = true;
          resize_deadline = now + o_.checkpoint_timeout_s;
        } else {
          KILN_LOG_WARN("launch", "{}: relaunching without a new checkpoint (the coordinator is "
                        "unreachable)", why);
          return Outcome{End::kResize, why, {}};
        }
      }
    }
  }
}

int Supervisor::run() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  const double launched = now_s();
  int failures = 0, generations = 0;
  pb::Cause cause = pb::CAUSE_START;
  std::string reason = "kiln launch";
  for (;;) {
    std::optional<Placement> p = wait_for_placement();
    if (!p) {
      if (g_signals.load() > signals_handled_) {
        KILN_LOG_WARN("launch", "stopped on request between generations");
        event("stopped", "stopped on request between generations");
        return kExitStopped;
      }
      const std::string msg =
          fmt::format("giving up: the usable hosts ({}) cannot hold --min-np {} ranks with an "
                      "exact global batch, after waiting {:.0f} s (--wait-for-hosts)",
                      describe_hosts(hosts_.usable(now_s())), o_.min_np, o_.wait_for_hosts_s);
      KILN_LOG_ERROR("launch", "{}", msg);
      event("gave-up", msg);
      return kExitFailed;
    }
    std::optional<int64_t> g;
    if (coordinator_) g = coordinator_->start_generation(p->world, cause, reason,
                                                         o_.checkpoint_root);
    generation_ = g ? *g : generation_ + 1;
    if (generations == 0) {  // the job exists at the coordinator from its first generation on
      event("launch", fmt::format("kiln launch (pid {}): world {}..{}, hosts {}, up to {} "
                                  "restart(s) after failures", ::getpid(), o_.min_np,
                                  o_.max_np == INT_MAX ? std::string("slots")
                                                       : std::to_string(o_.max_np),
                                  describe_hosts(hosts_.listed()), o_.max_restarts));
    }
    const int64_t accumulation = o_.batch.global_batch / (o_.batch.micro_batch * p->world);
    KILN_LOG_INFO("launch", "generation {} ({}{}{}): {} rank(s) on {}, gradient accumulation {}",
                  generation_, cause_word(cause), reason.empty() ? "" : ": ", reason, p->world,
                  p->mpirun_hosts(), accumulation);
    launch(*p, generation_, generations == 0);
    ++generations;
    Outcome out = supervise(*p, generation_);

    if (out.end != End::kFailed) teardown(o_.kill_grace_s);
    switch (out.end) {
      case End::kFinished:
        KILN_LOG_INFO("launch", "job '{}' finished: {} steps in {:.1f} s over {} generation(s), "
                      "{} failure(s)", o_.job, o_.total_steps, now_s() - launched, generations,
                      failures);
        event("finished", fmt::format("{} steps, {} generation(s), {} failure(s)",
                                      o_.total_steps, generations, failures));
        return kExitFinished;
      case End::kStopped:
        KILN_LOG_WARN("launch", "job '{}' stopped ({}); run the same command again to resume "
                      "from its last checkpoint", o_.job, out.reason);
        event("stopped", out.reason);
        return kExitStopped;
      case End::kFailed: {
        ++failures;
        KILN_LOG_ERROR("launch", "generation {} failed: {}", generation_, out.reason);
        event("failure", fmt::format("generation {}: {}", generation_, out.reason));
        teardown(o_.kill_grace_s);
        for (const std::string& host : out.blame) {
          hosts_.blacklist(host, now_s(), out.reason);
          event("blacklist", fmt::format("{}: {}", host, out.reason));
        }
        if (failures > o_.max_restarts) {
          const std::string msg = fmt::format("giving up after {} failure(s) (--max-restarts {})",
                                              failures, o_.max_restarts);
          KILN_LOG_ERROR("launch", "{}", msg);
          event("gave-up", msg);
          return kExitFailed;
        }
        KILN_LOG_INFO("launch", "restart {} of {} after a failure", failures, o_.max_restarts);
        cause = pb::CAUSE_FAILURE;
        reason = out.reason;
        break;
      }
      case End::kResize:
        cause = pb::CAUSE_MEMBERSHIP;
        reason = out.reason;
        break;
    }
  }
}

}  // namespace kiln::elastic
