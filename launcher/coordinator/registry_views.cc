// Read-only views of the registry: a job's status (GetJob, `kiln status`), the job list, and
// the Prometheus exposition of every job and rank.
#include <fmt/format.h>

#include <cmath>

#include "launcher/coordinator/prometheus.h"
#include "launcher/coordinator/registry.h"

namespace kiln::coord {

void Registry::fill_checkpoint(const Checkpoint& c, pb::Checkpoint* out) {
  out->set_generation(c.row.generation);
  out->set_step(c.row.step);
  out->set_path(c.row.path);
  out->set_manifest_checksum(c.row.checksum);
  out->set_acks(static_cast<int>(c.acked.size()));
  out->set_world(c.row.world);
  out->set_committed(c.row.committed);
  out->set_committed_at(c.row.committed_at);
  out->set_duration_s(c.row.duration_s);
  out->set_bytes(c.row.bytes);
}

const Registry::Checkpoint* Registry::latest_committed(const Job& job) const {
  // Keys are (step, generation): the last committed entry is the highest step, and among equal
  // steps the newest generation.
  for (auto it = job.checkpoints.rbegin(); it != job.checkpoints.rend(); ++it) {
    if (it->second.row.committed) return &it->second;
  }
  return nullptr;
}

grpc::Status Registry::get_job(const pb::GetJobRequest& req, pb::JobStatus* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = jobs_.find(req.job());
  if (found == jobs_.end()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        fmt::format("job '{}' is unknown to this coordinator", req.job()));
  }
  const Job& job = found->second;
  const auto now = Clock::now();
  out->set_job(job.row.job);
  out->set_checkpoint_root(job.row.checkpoint_root);
  out->set_created_at(job.row.created_at);
  out->set_generation(job.row.current_generation);
  out->set_restarts(job.restarts);
  out->set_failures(job.failures);
  out->set_server_time(unix_now());
  out->set_step(-1);

  auto cur = job.generations.find(job.row.current_generation);
  if (cur != job.generations.end()) {
    const Generation& g = cur->second;
    out->set_world(g.row.world);
    double rate_sum = 0;
    int rate_n = 0;
    int64_t slowest = -1;
    for (const std::optional<Member>& m : g.members) {
      if (!m) continue;
      pb::Member* pm = out->add_members();
      pm->set_rank(m->row.rank);
      pm->set_host(m->row.host);
      pm->set_pid(m->row.pid);
      pm->set_step(m->step);
      pm->set_phase(static_cast<pb::Phase>(m->phase));
      pm->set_samples_per_s(m->samples_per_s);
      pm->set_loss(m->loss);
      pm->set_step_ms(m->step_ms);
      pm->set_heartbeat_age_s(m->seen ? std::chrono::duration<double>(now - m->last_seen).count()
                                      : -1.0);
      pm->set_registered_at(m->row.registered_at);
      pm->set_applied_action_id(m->applied_action_id);
      pm->set_metrics_dropped(m->metrics_dropped);
      if (m->step >= 0) slowest = slowest < 0 ? m->step : std::min(slowest, m->step);
      if (m->seen) {
        rate_sum += m->samples_per_s;
        ++rate_n;
      }
    }
    out->set_step(slowest);
    out->set_samples_per_s(rate_n ? rate_sum / rate_n : 0.0);
  }
  for (const auto& [key, c] : job.checkpoints) {
    fill_checkpoint(c, c.row.committed ? out->add_checkpoints() : out->add_pending_checkpoints());
  }
  if (const Checkpoint* latest = latest_committed(job)) {
    fill_checkpoint(*latest, out->mutable_latest_checkpoint());
  }
  for (const auto& [n, g] : job.generations) {
    pb::Generation* pg = out->add_generations();
    pg->set_generation(g.row.generation);
    pg->set_world(g.row.world);
    pg->set_cause(static_cast<pb::Cause>(g.row.cause));
    pg->set_reason(g.row.reason);
    pg->set_started_at(g.row.started_at);
    pg->set_config_hash(g.row.config_hash);
  }
  if (job.row.action != pb::ACTION_CONTINUE) {
    pb::PendingAction* a = out->mutable_action();
    a->set_action(static_cast<pb::Action>(job.row.action));
    a->set_id(job.row.action_id);
    a->set_generation(job.row.action_generation);
    a->set_reason(job.row.action_reason);
    a->set_set_at(job.row.action_set_at);
    int applied = 0;
    if (cur != job.generations.end()) {
      for (const std::optional<Member>& m : cur->second.members) {
        applied += m && m->applied_action_id >= job.row.action_id;
      }
    }
    a->set_applied_ranks(applied);
  }
  const size_t want = req.max_events() ? req.max_events() : 20;
  const size_t skip = job.events.size() > want ? job.events.size() - want : 0;
  for (size_t i = skip; i < job.events.size(); ++i) {
    const EventRow& e = job.events[i];
    pb::Event* pe = out->add_events();
    pe->set_id(e.id);
    pe->set_generation(e.generation);
    pe->set_kind(e.kind);
    pe->set_message(e.message);
    pe->set_time(e.time);
  }
  return grpc::Status::OK;
}

void Registry::list_jobs(const std::string& scope, pb::ListJobsReply* reply) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, job] : jobs_) {
    if (!scope.empty() && scope != id) continue;
    pb::JobSummary* s = reply->add_jobs();
    s->set_job(id);
    s->set_generation(job.row.current_generation);
    s->set_step(-1);
    auto cur = job.generations.find(job.row.current_generation);
    if (cur != job.generations.end()) {
      s->set_world(cur->second.row.world);
      s->set_registered(cur->second.registered);
      int64_t slowest = -1;
      for (const std::optional<Member>& m : cur->second.members) {
        if (m && m->step >= 0) slowest = slowest < 0 ? m->step : std::min(slowest, m->step);
      }
      s->set_step(slowest);
    }
    const Checkpoint* latest = latest_committed(job);
    s->set_latest_checkpoint_step(latest ? latest->row.step : -1);
  }
}

void Registry::write_prometheus(PromWriter& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  struct Family {
    const char* name;
    const char* type;
    const char* help;
  };
  // Families are written one after the other, each with all its series, as the format asks.
  auto per_job = [&](const Family& f, auto value) {
    out.family(f.name, f.type, f.help);
    for (const auto& [id, job] : jobs_) {
      std::optional<double> v = value(job);
      if (v) out.sample(f.name, {{"job", id}}, *v);
    }
  };
  auto per_rank = [&](const Family& f, auto value) {
    out.family(f.name, f.type, f.help);
    for (const auto& [id, job] : jobs_) {
      auto cur = job.generations.find(job.row.current_generation);
      if (cur == job.generations.end()) continue;
      for (const std::optional<Member>& m : cur->second.members) {
        if (!m) continue;
        std::optional<double> v = value(*m);
        if (v) out.sample(f.name, {{"job", id}, {"rank", std::to_string(m->row.rank)}}, *v);
      }
    }
  };
  using O = std::optional<double>;
  per_job({"kiln_job_generation", "gauge", "Current generation of the job"},
          [](const Job& j) { return O(static_cast<double>(j.row.current_generation)); });
  per_job({"kiln_job_world_size", "gauge", "Ranks in the current generation"}, [](const Job& j) {
    auto g = j.generations.find(j.row.current_generation);
    return g == j.generations.end() ? O() : O(g->second.row.world);
  });
  per_job({"kiln_job_restarts_total", "counter", "Generations started after the first"},
          [](const Job& j) { return O(j.restarts); });
  per_job({"kiln_job_failures_total", "counter", "Restarts caused by a failure"},
          [](const Job& j) { return O(j.failures); });
  per_job({"kiln_checkpoints_committed_total", "counter", "Checkpoints acknowledged by every rank"},
          [](const Job& j) { return O(static_cast<double>(j.committed)); });
  per_job({"kiln_checkpoint_latest_step", "gauge", "Step of the latest committed checkpoint"},
          [this](const Job& j) {
            const Checkpoint* c = latest_committed(j);
            return c ? O(static_cast<double>(c->row.step)) : O();
          });
  per_job({"kiln_checkpoint_last_duration_seconds", "gauge",
           "Write time of the latest committed checkpoint (slowest rank)"},
          [](const Job& j) { return j.committed ? O(j.last_duration) : O(); });
  out.family("kiln_checkpoint_duration_seconds", "summary",
             "Write time of committed checkpoints (slowest rank)");
  for (const auto& [id, job] : jobs_) {
    out.sample("kiln_checkpoint_duration_seconds_sum", {{"job", id}}, job.duration_sum);
    out.sample("kiln_checkpoint_duration_seconds_count", {{"job", id}},
               static_cast<double>(job.committed));
  }
  per_rank({"kiln_rank_step", "gauge", "Latest step reported by the rank"},
           [](const Member& m) { return m.step >= 0 ? O(static_cast<double>(m.step)) : O(); });
  per_rank({"kiln_rank_loss", "gauge", "Latest training loss reported by the rank"},
           [](const Member& m) { return m.has_loss ? O(m.loss) : O(); });
  per_rank({"kiln_rank_samples_per_second", "gauge", "Training throughput reported by the rank"},
           [](const Member& m) { return m.seen ? O(m.samples_per_s) : O(); });
  per_rank({"kiln_rank_step_milliseconds", "gauge", "Latest step time reported by the rank"},
           [](const Member& m) { return m.points ? O(m.step_ms) : O(); });
  per_rank(
      {"kiln_rank_heartbeat_age_seconds", "gauge", "Seconds since the rank was last heard from"},
      [now](const Member& m) {
        return m.seen ? O(std::chrono::duration<double>(now - m.last_seen).count()) : O();
      });
  per_rank({"kiln_rank_metrics_dropped_total", "counter",
            "Metric points the rank's reporter dropped from its bounded queue"},
           [](const Member& m) { return O(static_cast<double>(m.metrics_dropped)); });
}

}  // namespace kiln::coord
