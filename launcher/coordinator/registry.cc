// The registry's mutations (membership, generations, checkpoints, events, actions) and the
// in-memory calls (heartbeats, metrics).
#include "launcher/coordinator/registry.h"

#include <fmt/format.h>

#include "core/log.h"
#include "launcher/coordinator/validate.h"

namespace kiln::coord {

namespace {

constexpr size_t kEventsInMemory = 200;

grpc::Status status(grpc::StatusCode code, std::string msg) {
  return grpc::Status(code, std::move(msg));
}

const char* cause_name(int cause) {
  return pb::Cause_IsValid(cause) ? pb::Cause_Name(static_cast<pb::Cause>(cause)).c_str() + 6
                                  : "UNKNOWN";
}

}  // namespace

Registry::Registry(std::string coordinator_id) : id_(std::move(coordinator_id)) {}

void Registry::restore(const Snapshot& s) {
  std::lock_guard<std::mutex> lock(mu_);
  jobs_.clear();
  for (const JobRow& r : s.jobs) jobs_[r.job].row = r;
  for (const GenerationRow& r : s.generations) {
    Job& job = jobs_[r.job];
    Generation& g = job.generations[r.generation];
    g.row = r;
    g.members.resize(static_cast<size_t>(r.world));
    if (r.generation != job.generations.begin()->first) {
      ++job.restarts;
      if (r.cause == pb::CAUSE_FAILURE) ++job.failures;
    }
  }
  for (const MemberRow& r : s.members) {
    Generation& g = jobs_[r.job].generations[r.generation];
    if (r.rank < 0 || r.rank >= static_cast<int>(g.members.size())) continue;
    if (!g.members[r.rank]) ++g.registered;
    g.members[r.rank] = Member{};
    g.members[r.rank]->row = r;
  }
  for (const CheckpointRow& r : s.checkpoints) {
    Job& job = jobs_[r.job];
    job.checkpoints[{r.step, r.generation}].row = r;
    if (r.committed) {
      ++job.committed;
      job.duration_sum += r.duration_s;
      job.last_duration = r.duration_s;
    }
  }
  for (const AckRow& r : s.acks) {
    auto it = jobs_[r.job].checkpoints.find({r.step, r.generation});
    if (it != jobs_[r.job].checkpoints.end()) it->second.acked.insert(r.rank);
  }
  for (const EventRow& r : s.events) jobs_[r.job].events.push_back(r);
}

Registry::Job* Registry::find_job(const std::string& job) {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? nullptr : &it->second;
}

Registry::Member* Registry::find_member(const std::string& job_id, int64_t generation, int rank,
                                        bool current_only, grpc::Status* st, Job** job_out) {
  Job* job = find_job(job_id);
  if (!job) {
    *st = status(grpc::StatusCode::NOT_FOUND,
                 fmt::format("job '{}' is unknown: register first", job_id));
    return nullptr;
  }
  if (job_out) *job_out = job;
  if (current_only && generation < job->row.current_generation) {
    *st = status(grpc::StatusCode::FAILED_PRECONDITION,
                 fmt::format("generation {} of job '{}' is over: the current one is {}", generation,
                             job_id, job->row.current_generation));
    return nullptr;
  }
  auto g = job->generations.find(generation);
  if (g == job->generations.end()) {
    *st = status(grpc::StatusCode::NOT_FOUND,
                 fmt::format("job '{}' has no generation {}: register first", job_id, generation));
    return nullptr;
  }
  if (rank >= static_cast<int>(g->second.members.size())) {
    *st = status(grpc::StatusCode::OUT_OF_RANGE,
                 fmt::format("rank {} is outside [0, {}) for generation {} of job '{}'", rank,
                             g->second.members.size(), generation, job_id));
    return nullptr;
  }
  std::optional<Member>& m = g->second.members[static_cast<size_t>(rank)];
  if (!m) {
    *st = status(grpc::StatusCode::NOT_FOUND,
                 fmt::format("rank {} of generation {} of job '{}' has not registered", rank,
                             generation, job_id));
    return nullptr;
  }
  return &*m;
}

void Registry::add_event(Store& store, Job& job, const std::string& kind,
                         const std::string& message) {
  EventRow e{0, job.row.job, job.row.current_generation, kind, message, unix_now()};
  e.id = store.add_event(e);
  KILN_LOG_INFO("coord", "job '{}': {}: {}", job.row.job, kind, message);
  job.events.push_back(std::move(e));
  while (job.events.size() > kEventsInMemory) job.events.pop_front();
}

Registry::Job& Registry::add_job(Store& store, const std::string& id, const std::string& root) {
  JobRow row;
  row.job = id;
  row.checkpoint_root = root;
  row.created_at = unix_now();
  store.put_job(row);
  Job& job = jobs_[id];
  job.row = row;
  return job;
}

Registry::Generation& Registry::add_generation(Store& store, Job& job, int64_t generation,
                                               int world, int cause, const std::string& reason,
                                               const std::string& config_hash) {
  GenerationRow row{job.row.job, generation, world, cause, reason, config_hash, unix_now()};
  JobRow jrow = job.row;
  jrow.current_generation = generation;
  store.put_job(jrow);
  store.put_generation(row);
  const bool first = job.generations.empty();
  job.row = jrow;
  Generation& g = job.generations[generation];
  g.row = row;
  g.members.resize(static_cast<size_t>(world));
  if (!first) {
    ++job.restarts;
    if (cause == pb::CAUSE_FAILURE) ++job.failures;
  }
  add_event(store, job, "generation",
            fmt::format("generation {} started: world {}, cause {}{}{}", generation, world,
                        cause_name(cause), reason.empty() ? "" : ": ", reason));
  return g;
}

grpc::Status Registry::adopt_root(Store& store, Job& job, const std::string& root) {
  if (root.empty() || root == job.row.checkpoint_root) return grpc::Status::OK;
  if (!job.row.checkpoint_root.empty()) {
    return status(grpc::StatusCode::FAILED_PRECONDITION,
                  fmt::format("checkpoint_root '{}' differs from job '{}''s root '{}': every "
                              "rank and generation of a job uses the same checkpoint.dir",
                              root, job.row.job, job.row.checkpoint_root));
  }
  JobRow r = job.row;
  r.checkpoint_root = root;
  store.put_job(r);
  job.row = r;
  return grpc::Status::OK;
}

grpc::Status Registry::register_member(Store& store, const pb::RegisterRequest& req,
                                       pb::RegisterReply* reply) {
  std::lock_guard<std::mutex> lock(mu_);
  const int rank = req.rank(), world = req.world();
  Job* job = find_job(req.job());
  if (!job) job = &add_job(store, req.job(), req.checkpoint_root());
  if (grpc::Status s = adopt_root(store, *job, req.checkpoint_root()); !s.ok()) return s;

  auto holds_slot = [&](const Generation& g) {
    const std::optional<Member>& m = g.members[static_cast<size_t>(rank)];
    return m && m->row.host == req.host() && m->row.pid == req.pid();
  };
  auto slot_free = [&](const Generation& g) {
    return !g.members[static_cast<size_t>(rank)] || holds_slot(g);
  };
  const int64_t current = job->row.current_generation;
  Generation* gen = nullptr;
  if (current >= 0) gen = &job->generations.at(current);

  int64_t target;
  if (req.has_generation()) {
    target = req.generation();
    if (target < current) {
      return status(grpc::StatusCode::FAILED_PRECONDITION,
                    fmt::format("generation {} of job '{}' is over: the current one is {}", target,
                                req.job(), current));
    }
  } else if (gen && gen->row.world == world && slot_free(*gen) &&
             (gen->row.config_hash.empty() || req.config_hash().empty() ||
              gen->row.config_hash == req.config_hash())) {
    target = current;
  } else {
    target = current + 1;
  }

  if (target != current) {
    const bool first = current < 0;
    gen = &add_generation(
        store, *job, target, world, first ? pb::CAUSE_START : pb::CAUSE_RERUN,
        first ? "first registration"
              : fmt::format("rank {} ({}:{}) registered again", rank, req.host(), req.pid()),
        req.config_hash());
  }
  if (gen->row.world != world) {
    return status(grpc::StatusCode::FAILED_PRECONDITION,
                  fmt::format("world {} differs from generation {}'s world {} in job '{}': all "
                              "ranks of a generation must agree",
                              world, target, gen->row.world, req.job()));
  }
  if (!req.config_hash().empty() && !gen->row.config_hash.empty() &&
      req.config_hash() != gen->row.config_hash) {
    return status(grpc::StatusCode::FAILED_PRECONDITION,
                  fmt::format("rank {}'s config hash {} differs from generation {}'s {}: the "
                              "ranks were started with different configs",
                              rank, req.config_hash(), target, gen->row.config_hash));
  }
  if (!slot_free(*gen)) {
    const MemberRow& held = gen->members[static_cast<size_t>(rank)]->row;
    return status(grpc::StatusCode::FAILED_PRECONDITION,
                  fmt::format("rank {} of generation {} of job '{}' is held by {}:{}; a "
                              "restarted job registers in a new generation",
                              rank, target, req.job(), held.host, held.pid));
  }
  if (gen->row.config_hash.empty() && !req.config_hash().empty()) {
    gen->row.config_hash = req.config_hash();
    store.put_generation(gen->row);
  }
  std::optional<Member>& slot = gen->members[static_cast<size_t>(rank)];
  if (!slot) {
    MemberRow row{req.job(), target, rank, req.host(), req.pid(), unix_now()};
    store.put_member(row);
    slot = Member{};
    slot->row = row;
    ++gen->registered;
    KILN_LOG_INFO("coord",
                  "job '{}' generation {}: rank {}/{} registered from {} (pid {}), {} "
                  "of {} ranks now",
                  req.job(), target, rank, world, req.host(), req.pid(), gen->registered, world);
  }
  reply->set_generation(target);
  reply->set_coordinator_id(id_);
  const Checkpoint* latest = latest_committed(*job);
  reply->set_latest_committed_step(latest ? latest->row.step : -1);
  return grpc::Status::OK;
}

grpc::Status Registry::commit_checkpoint(Store& store, const pb::CommitCheckpointRequest& req,
                                         pb::CommitCheckpointReply* reply) {
  std::lock_guard<std::mutex> lock(mu_);
  grpc::Status st;
  Job* job = nullptr;
  // Acks from a generation that is over still count: its ranks may have finished writing.
  if (!find_member(req.job(), req.generation(), req.rank(), false, &st, &job)) return st;
  std::string path;
  if (grpc::Status s = resolve_checkpoint_path(job->row.checkpoint_root, req.path(), &path);
      !s.ok()) {
    return s;
  }
  const Generation& gen = job->generations.at(req.generation());
  auto key = std::make_pair(req.step(), req.generation());
  auto it = job->checkpoints.find(key);
  CheckpointRow row;
  if (it == job->checkpoints.end()) {
    row = CheckpointRow{req.job(), req.generation(), req.step(), path, "", gen.row.world};
  } else {
    row = it->second.row;
    if (row.path != path) {
      return status(grpc::StatusCode::FAILED_PRECONDITION,
                    fmt::format("rank {} reports checkpoint step {} at '{}', other ranks at "
                                "'{}'",
                                req.rank(), req.step(), path, row.path));
    }
    if (it->second.acked.count(req.rank())) {  // a replay after a reconnect
      reply->set_committed(row.committed);
      reply->set_acks(static_cast<int>(it->second.acked.size()));
      reply->set_world(row.world);
      return grpc::Status::OK;
    }
  }
  if (!req.manifest_checksum().empty()) {
    if (!row.checksum.empty() && row.checksum != req.manifest_checksum()) {
      return status(grpc::StatusCode::FAILED_PRECONDITION,
                    fmt::format("rank {} reports manifest checksum {} for checkpoint step {}, "
                                "other ranks {}",
                                req.rank(), req.manifest_checksum(), req.step(), row.checksum));
    }
    row.checksum = req.manifest_checksum();
  }
  row.duration_s = std::max(row.duration_s, req.duration_s());
  row.bytes += req.bytes();
  const size_t acks = (it == job->checkpoints.end() ? 0 : it->second.acked.size()) + 1;
  const double now = unix_now();
  if (acks == static_cast<size_t>(row.world)) {
    row.committed = true;
    row.committed_at = now;
  }
  store.put_checkpoint(row);
  store.put_ack(AckRow{req.job(), req.generation(), req.step(), req.rank(), req.duration_s(), now});

  Checkpoint& c = job->checkpoints[key];
  c.row = row;
  c.acked.insert(req.rank());
  if (row.committed) {
    ++job->committed;
    job->duration_sum += row.duration_s;
    job->last_duration = row.duration_s;
    add_event(store, *job, "checkpoint",
              fmt::format("checkpoint step {} of generation {} committed: {} ({} ranks, "
                          "{:.2f} s)",
                          row.step, row.generation, row.path, row.world, row.duration_s));
    // A checkpoint-now is satisfied by any checkpoint of its generation committed after it.
    if (job->row.action == pb::ACTION_CHECKPOINT_NOW &&
        job->row.action_generation == row.generation && job->row.action_set_at <= now) {
      JobRow jr = job->row;
      jr.action = pb::ACTION_CONTINUE;
      store.put_job(jr);
      job->row = jr;
    }
  }
  reply->set_committed(row.committed);
  reply->set_acks(static_cast<int>(acks));
  reply->set_world(row.world);
  return grpc::Status::OK;
}

grpc::Status Registry::start_generation(Store& store, const pb::StartGenerationRequest& req,
                                        pb::StartGenerationReply* reply) {
  std::lock_guard<std::mutex> lock(mu_);
  Job* job = find_job(req.job());
  if (!job) job = &add_job(store, req.job(), req.checkpoint_root());
  if (grpc::Status s = adopt_root(store, *job, req.checkpoint_root()); !s.ok()) return s;
  const int64_t current = job->row.current_generation;
  const int64_t target = req.has_generation() ? req.generation() : current + 1;
  if (target <= current) {
    return status(grpc::StatusCode::FAILED_PRECONDITION,
                  fmt::format("generation {} of job '{}' is not new: the current one is {}", target,
                              req.job(), current));
  }
  add_generation(store, *job, target, req.world(), req.cause(), req.reason(), "");
  reply->set_generation(target);
  return grpc::Status::OK;
}

grpc::Status Registry::record_event(Store& store, const pb::RecordEventRequest& req,
                                    pb::RecordEventReply* reply) {
  std::lock_guard<std::mutex> lock(mu_);
  Job* job = find_job(req.job());
  if (!job) {
    return status(grpc::StatusCode::NOT_FOUND, fmt::format("job '{}' is unknown", req.job()));
  }
  add_event(store, *job, req.kind(), req.message());
  reply->set_id(job->events.back().id);
  return grpc::Status::OK;
}

grpc::Status Registry::set_action(Store& store, const pb::SetActionRequest& req,
                                  pb::SetActionReply* reply) {
  std::lock_guard<std::mutex> lock(mu_);
  Job* job = find_job(req.job());
  if (!job) {
    return status(grpc::StatusCode::NOT_FOUND, fmt::format("job '{}' is unknown", req.job()));
  }
  if (job->row.current_generation < 0) {
    return status(grpc::StatusCode::FAILED_PRECONDITION,
                  fmt::format("job '{}' has no generation to act on yet", req.job()));
  }
  JobRow r = job->row;
  if (req.action() != pb::ACTION_CONTINUE) ++r.action_id;
  r.action = req.action();
  r.action_generation = r.current_generation;
  r.action_reason = req.reason();
  r.action_set_at = unix_now();
  store.put_job(r);
  job->row = r;
  add_event(store, *job, "action",
            fmt::format("{} (id {}){}{}", pb::Action_Name(req.action()), r.action_id,
                        req.reason().empty() ? "" : ": ", req.reason()));
  reply->set_action_id(req.action() == pb::ACTION_CONTINUE ? 0 : r.action_id);
  reply->set_generation(r.current_generation);
  return grpc::Status::OK;
}

grpc::Status Registry::heartbeat(const pb::HeartbeatRequest& req, pb::HeartbeatReply* reply) {
  std::lock_guard<std::mutex> lock(mu_);
  grpc::Status st;
  Job* job = nullptr;
  Member* m = find_member(req.job(), req.generation(), req.rank(), true, &st, &job);
  if (!m) return st;
  m->seen = true;
  m->last_seen = Clock::now();
  m->phase = req.phase();
  if (req.step() >= 0) {  // before its first step a rank has no progress to report
    m->step = std::max(m->step, req.step());
    m->samples_per_s = req.samples_per_s();
    m->loss = req.loss();
    m->has_loss = true;
  }
  m->applied_action_id = req.applied_action_id();
  m->metrics_dropped = req.metrics_dropped();
  const JobRow& r = job->row;
  if (r.action != pb::ACTION_CONTINUE && r.action_generation == req.generation()) {
    reply->set_action(static_cast<pb::Action>(r.action));
    reply->set_action_id(r.action_id);
    reply->set_reason(r.action_reason);
  }
  return grpc::Status::OK;
}

grpc::Status Registry::report_metrics(const pb::ReportMetricsRequest& req,
                                      pb::ReportMetricsReply* reply) {
  std::lock_guard<std::mutex> lock(mu_);
  grpc::Status st;
  Member* m = find_member(req.job(), req.generation(), req.rank(), true, &st);
  if (!m) return st;
  uint32_t accepted = 0;
  for (const pb::MetricPoint& p : req.points()) {
    if (p.seq() <= m->last_seq) continue;  // replayed after a reconnect
    m->last_seq = p.seq();
    m->step = std::max(m->step, p.step());
    m->loss = p.loss();
    m->has_loss = true;
    m->samples_per_s = p.samples_per_s();
    m->step_ms = p.step_ms();
    ++m->points;
    ++accepted;
  }
  m->seen = true;
  m->last_seen = Clock::now();
  reply->set_acked_seq(m->last_seq);
  reply->set_accepted(accepted);
  return grpc::Status::OK;
}

}  // namespace kiln::coord
