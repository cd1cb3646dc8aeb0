// The coordinator's durable records as plain rows: what the SQLite store writes and reads back,
// and what the in-memory registry builds on. Times are seconds since the Unix epoch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::coord {

struct JobRow {
  std::string job;
  std::string checkpoint_root;
  double created_at = 0;
  int64_t current_generation = -1;
  // The job's pending action (kiln.coord.v1.Action), bound to one generation.
  uint64_t action_id = 0;
  int action = 0;
  int64_t action_generation = -1;
  std::string action_reason;
  double action_set_at = 0;
};

struct GenerationRow {
  std::string job;
  int64_t generation = 0;
  int world = 0;
  int cause = 0;  // kiln.coord.v1.Cause
  std::string reason;
  std::string config_hash;
  double started_at = 0;
};

struct MemberRow {
  std::string job;
  int64_t generation = 0;
  int rank = 0;
  std::string host;
  int64_t pid = 0;
  double registered_at = 0;
};

struct CheckpointRow {
  std::string job;
  int64_t generation = 0;
  int64_t step = 0;
  std::string path;  // absolute
  std::string checksum;
  int world = 0;
  bool committed = false;
  double committed_at = 0;
  double duration_s = 0;  // the slowest rank's
  uint64_t bytes = 0;     // summed over ranks
};

struct AckRow {
  std::string job;
  int64_t generation = 0;
  int64_t step = 0;
  int rank = 0;
  double duration_s = 0;
  double acked_at = 0;
};

struct EventRow {
  int64_t id = 0;
  std::string job;
  int64_t generation = -1;
  std::string kind;
  std::string message;
  double time = 0;
};

struct KvRow {
  std::string job;
  std::string key;
  std::string value;
  uint64_t version = 0;
};

// Everything on disk, read once at start-up.
struct Snapshot {
  std::vector<JobRow> jobs;
  std::vector<GenerationRow> generations;
  std::vector<MemberRow> members;
  std::vector<CheckpointRow> checkpoints;
  std::vector<AckRow> acks;
  std::vector<EventRow> events;  // the most recent ones per job, oldest first
  std::vector<KvRow> kv;
};

double unix_now();

}  // namespace kiln::coord
