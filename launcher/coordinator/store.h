// The coordinator's durable state in SQLite (WAL, synchronous=FULL) inside the state folder:
// jobs, generations, members, checkpoints and their per-rank acknowledgements, events and the
// key-value store. Writes happen inside transactions opened by the durable writer; a row is
// "acknowledged" only after commit() returned. Not thread-safe: the writer thread owns it after
// load().
#pragma once

#include <memory>
#include <string>

#include "launcher/coordinator/sqlite_db.h"
#include "launcher/coordinator/state.h"

namespace kiln::coord {

class Store {
 public:
  // Opens or creates `state_dir/coordinator.db` and its schema.
  explicit Store(const std::string& state_dir);
  // Reads everything back (at most `events_per_job` recent events per job).
  Snapshot load(int events_per_job);

  void begin();
  void commit();  // durable when it returns

  void put_job(const JobRow& r);
  void put_generation(const GenerationRow& r);
  void put_member(const MemberRow& r);
  void put_checkpoint(const CheckpointRow& r);
  void put_ack(const AckRow& r);
  int64_t add_event(const EventRow& r);  // the new event's id
  void put_kv(const KvRow& r);

  const std::string& path() const { return db_->path(); }

 private:
  std::unique_ptr<Db> db_;
};

}  // namespace kiln::coord
