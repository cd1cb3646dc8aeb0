// The trainer's view of the coordinator: a Reporter takes step metrics, phases and checkpoint
// commits from the training thread without ever blocking on the network (the gRPC reporter
// queues them for its own thread), and hands back what the coordinator asked for. The trainer
// applies an action on all ranks at the same step boundary through its control all-reduce,
// then calls action_applied() with the newest action id any rank saw.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/config.h"

namespace kiln {

enum class CoordinatorAction { kContinue = 0, kCheckpointNow = 1, kStop = 2 };
enum class WorkerPhase {
  kStarting = 1,
  kTraining,
  kEvaluating,
  kCheckpointing,
  kFinished,
  kFailed
};

struct PendingAction {
  CoordinatorAction action = CoordinatorAction::kContinue;
  uint64_t id = 0;  // increasing per job; 0 with kContinue
};

struct StepReport {
  int64_t step = 0;  // steps done
  double loss = 0;   // mean training loss of this step over all ranks
  double samples_per_s = 0;
  double step_ms = 0;
};

struct CheckpointReport {
  int64_t step = 0;
  std::string path;  // the checkpoint folder, inside checkpoint.dir
  std::string manifest_checksum;
  double duration_s = 0;
  uint64_t bytes = 0;
};

// Thread safety: every method may be called from the training thread at any time; none waits
// for the coordinator.
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void on_step(const StepReport& r) = 0;
  virtual void on_phase(WorkerPhase phase) = 0;
  virtual void on_checkpoint(const CheckpointReport& r) = 0;
  // The newest action not yet applied (kContinue when none). Cheap: one atomic load.
  virtual PendingAction pending_action() = 0;
  // Actions up to `id` are done; they are not returned again and the coordinator is told.
  virtual void action_applied(uint64_t id) = 0;
};

// The reporter for `cfg.coordinator`, or null when coordinator.address is empty. Throws when
// the address is set but the build has no coordinator client (KILN_WITH_GRPC off), or the job
// or token is missing.
std::unique_ptr<Reporter> make_reporter(const Config& cfg, int rank, int world);

}  // namespace kiln
