// SQLite schema and row I/O for the coordinator's durable state.
#include "launcher/coordinator/store.h"

#include <chrono>
#include <filesystem>

#include "core/log.h"

namespace kiln::coord {

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
  job TEXT PRIMARY KEY, checkpoint_root TEXT NOT NULL, created_at REAL NOT NULL,
  current_generation INTEGER NOT NULL, action_id INTEGER NOT NULL, action INTEGER NOT NULL,
  action_generation INTEGER NOT NULL, action_reason TEXT NOT NULL, action_set_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
  job TEXT NOT NULL REFERENCES jobs(job), generation INTEGER NOT NULL, world INTEGER NOT NULL,
  cause INTEGER NOT NULL, reason TEXT NOT NULL, config_hash TEXT NOT NULL,
  started_at REAL NOT NULL, PRIMARY KEY (job, generation));
CREATE TABLE IF NOT EXISTS members (
  job TEXT NOT NULL, generation INTEGER NOT NULL, rank INTEGER NOT NULL, host TEXT NOT NULL,
  pid INTEGER NOT NULL, registered_at REAL NOT NULL, PRIMARY KEY (job, generation, rank),
  FOREIGN KEY (job, generation) REFERENCES generations(job, generation));
CREATE TABLE IF NOT EXISTS checkpoints (
  job TEXT NOT NULL, generation INTEGER NOT NULL, step INTEGER NOT NULL, path TEXT NOT NULL,
  checksum TEXT NOT NULL, world INTEGER NOT NULL, committed INTEGER NOT NULL,
  committed_at REAL NOT NULL, duration_s REAL NOT NULL, bytes INTEGER NOT NULL,
  PRIMARY KEY (job, generation, step),
  FOREIGN KEY (job, generation) REFERENCES generations(job, generation));
CREATE TABLE IF NOT EXISTS checkpoint_acks (
  job TEXT NOT NULL, generation INTEGER NOT NULL, step INTEGER NOT NULL, rank INTEGER NOT NULL,
  duration_s REAL NOT NULL, acked_at REAL NOT NULL, PRIMARY KEY (job, generation, step, rank),
  FOREIGN KEY (job, generation, step) REFERENCES checkpoints(job, generation, step));
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL REFERENCES jobs(job),
  generation INTEGER NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job, id);
CREATE TABLE IF NOT EXISTS kv (
  job TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, version INTEGER NOT NULL,
  PRIMARY KEY (job, key));
)sql";

}  // namespace

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Store::Store(const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  KILN_CHECK(!ec, "cannot create the coordinator state folder {}: {}", state_dir, ec.message());
  db_ = std::make_unique<Db>((std::filesystem::path(state_dir) / "coordinator.db").string());
  db_->exec("BEGIN IMMEDIATE");
  db_->exec(kSchema);
  Statement& get = db_->prepare("SELECT value FROM meta WHERE key = 'schema_version'");
  if (get.step()) {
    const std::string found = get.text(0);
    get.reset();
    if (found != std::to_string(kSchemaVersion)) {
      db_->exec("ROLLBACK");
      KILN_FAIL(
          "{} has schema version {}, this Kiln reads version {}; use a new --state-dir "
          "or the Kiln version that wrote it",
          db_->path(), found, kSchemaVersion);
    }
  } else {
    get.reset();
    db_->prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?)")
        .bind(1, std::to_string(kSchemaVersion))
        .run();
  }
  db_->exec("COMMIT");
}

Snapshot Store::load(int events_per_job) {
  Snapshot s;
  Statement& jobs = db_->prepare(
      "SELECT job, checkpoint_root, created_at, current_generation, action_id, action, "
      "action_generation, action_reason, action_set_at FROM jobs ORDER BY job");
  while (jobs.step()) {
    JobRow r;
    r.job = jobs.text(0);
    r.checkpoint_root = jobs.text(1);
    r.created_at = jobs.real(2);
    r.current_generation = jobs.int64(3);
    r.action_id = static_cast<uint64_t>(jobs.int64(4));
    r.action = static_cast<int>(jobs.int64(5));
    r.action_generation = jobs.int64(6);
    r.action_reason = jobs.text(7);
    r.action_set_at = jobs.real(8);
    s.jobs.push_back(std::move(r));
  }
  jobs.reset();
  Statement& gens = db_->prepare(
      "SELECT job, generation, world, cause, reason, config_hash, started_at FROM generations "
      "ORDER BY job, generation");
  while (gens.step()) {
    s.generations.push_back(
        GenerationRow{gens.text(0), gens.int64(1), static_cast<int>(gens.int64(2)),
                      static_cast<int>(gens.int64(3)), gens.text(4), gens.text(5), gens.real(6)});
  }
  gens.reset();
  Statement& mem = db_->prepare(
      "SELECT job, generation, rank, host, pid, registered_at FROM members "
      "ORDER BY job, generation, rank");
  while (mem.step()) {
    s.members.push_back(MemberRow{mem.text(0), mem.int64(1), static_cast<int>(mem.int64(2)),
                                  mem.text(3), mem.int64(4), mem.real(5)});
  }
  mem.reset();
  Statement& ck = db_->prepare(
      "SELECT job, generation, step, path, checksum, world, committed, committed_at, "
      "duration_s, bytes FROM checkpoints ORDER BY job, step, generation");
  while (ck.step()) {
    CheckpointRow r;
    r.job = ck.text(0);
    r.generation = ck.int64(1);
    r.step = ck.int64(2);
    r.path = ck.text(3);
    r.checksum = ck.text(4);
    r.world = static_cast<int>(ck.int64(5));
    r.committed = ck.int64(6) != 0;
    r.committed_at = ck.real(7);
    r.duration_s = ck.real(8);
    r.bytes = static_cast<uint64_t>(ck.int64(9));
    s.checkpoints.push_back(std::move(r));
  }
  ck.reset();
  Statement& acks =
      db_->prepare("SELECT job, generation, step, rank, duration_s, acked_at FROM checkpoint_acks");
  while (acks.step()) {
    s.acks.push_back(AckRow{acks.text(0), acks.int64(1), acks.int64(2),
                            static_cast<int>(acks.int64(3)), acks.real(4), acks.real(5)});
  }
  acks.reset();
  // The newest `events_per_job` of each job, oldest first.
  Statement& ev = db_->prepare(
      "SELECT id, job, generation, kind, message, time FROM events e WHERE id IN "
      "(SELECT id FROM events WHERE job = e.job ORDER BY id DESC LIMIT ?) ORDER BY job, id");
  ev.bind(1, static_cast<int64_t>(events_per_job));
  while (ev.step()) {
    s.events.push_back(
        EventRow{ev.int64(0), ev.text(1), ev.int64(2), ev.text(3), ev.text(4), ev.real(5)});
  }
  ev.reset();
  Statement& kv = db_->prepare("SELECT job, key, value, version FROM kv");
  while (kv.step()) {
    s.kv.push_back(KvRow{kv.text(0), kv.text(1), kv.text(2), static_cast<uint64_t>(kv.int64(3))});
  }
  kv.reset();
  return s;
}

void Store::begin() { db_->exec("BEGIN IMMEDIATE"); }
void Store::commit() { db_->exec("COMMIT"); }

void Store::put_job(const JobRow& r) {
  db_->prepare(
         "INSERT INTO jobs (job, checkpoint_root, created_at, current_generation, action_id, "
         "action, action_generation, action_reason, action_set_at) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job) DO UPDATE SET "
         "checkpoint_root = excluded.checkpoint_root, current_generation = "
         "excluded.current_generation, action_id = excluded.action_id, action = excluded.action, "
         "action_generation = excluded.action_generation, action_reason = "
         "excluded.action_reason, action_set_at = excluded.action_set_at")
      .bind(1, r.job)
      .bind(2, r.checkpoint_root)
      .bind(3, r.created_at)
      .bind(4, r.current_generation)
      .bind(5, static_cast<int64_t>(r.action_id))
      .bind(6, r.action)
      .bind(7, r.action_generation)
      .bind(8, r.action_reason)
      .bind(9, r.action_set_at)
      .run();
}

void Store::put_generation(const GenerationRow& r) {
  db_->prepare(
         "INSERT INTO generations (job, generation, world, cause, reason, config_hash, "
         "started_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job, generation) DO UPDATE SET "
         "config_hash = excluded.config_hash")
      .bind(1, r.job)
      .bind(2, r.generation)
      .bind(3, r.world)
      .bind(4, r.cause)
      .bind(5, r.reason)
      .bind(6, r.config_hash)
      .bind(7, r.started_at)
      .run();
}

void Store::put_member(const MemberRow& r) {
  db_->prepare(
         "INSERT OR REPLACE INTO members (job, generation, rank, host, pid, registered_at) "
         "VALUES (?, ?, ?, ?, ?, ?)")
      .bind(1, r.job)
      .bind(2, r.generation)
      .bind(3, r.rank)
      .bind(4, r.host)
      .bind(5, r.pid)
      .bind(6, r.registered_at)
      .run();
}

void Store::put_checkpoint(const CheckpointRow& r) {
  db_->prepare(
         "INSERT INTO checkpoints (job, generation, step, path, checksum, world, committed, "
         "committed_at, duration_s, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
         "ON CONFLICT (job, generation, step) DO UPDATE SET checksum = excluded.checksum, "
         "committed = excluded.committed, committed_at = excluded.committed_at, "
         "duration_s = excluded.duration_s, bytes = excluded.bytes")
      .bind(1, r.job)
      .bind(2, r.generation)
      .bind(3, r.step)
      .bind(4, r.path)
      .bind(5, r.checksum)
      .bind(6, r.world)
      .bind(7, r.committed ? 1 : 0)
      .bind(8, r.committed_at)
      .bind(9, r.duration_s)
      .bind(10, static_cast<int64_t>(r.bytes))
      .run();
}

void Store::put_ack(const AckRow& r) {
  db_->prepare(
         "INSERT OR REPLACE INTO checkpoint_acks (job, generation, step, rank, duration_s, "
         "acked_at) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(1, r.job)
      .bind(2, r.generation)
      .bind(3, r.step)
      .bind(4, r.rank)
      .bind(5, r.duration_s)
      .bind(6, r.acked_at)
      .run();
}

int64_t Store::add_event(const EventRow& r) {
  db_->prepare("INSERT INTO events (job, generation, kind, message, time) VALUES (?, ?, ?, ?, ?)")
      .bind(1, r.job)
      .bind(2, r.generation)
      .bind(3, r.kind)
      .bind(4, r.message)
      .bind(5, r.time)
      .run();
  return db_->last_insert_rowid();
}

void Store::put_kv(const KvRow& r) {
  db_->prepare("INSERT OR REPLACE INTO kv (job, key, value, version) VALUES (?, ?, ?, ?)")
      .bind(1, r.job)
      .bind(2, r.key)
      .bind_blob(3, r.value)
      .bind(4, static_cast<int64_t>(r.version))
      .run();
}

}  // namespace kiln::coord
