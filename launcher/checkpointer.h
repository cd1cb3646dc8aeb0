// The Checkpointer of one rank (DESIGN decision 8): asynchronous, sharded, atomic saves and the
// restore that resumes a run exactly, also at another world size.
//
// Saving: at a step boundary the trainer calls after_step(); when a save is due the training
// thread only records an event and hands a job to the writer thread, which copies parameters
// and optimizer state to host memory (the snapshot) while the next step's forward/backward runs
// (they do not change them); a second thread, at a low CPU priority so that it yields the cores
// to training, writes the files under step-N.tmp/. before_update() - called
// before the optimizer touches parameters or state - waits for that copy. Each rank writes its
// own optimizer shard, rank 0 also model.safetensors and trainer.json. Ranks learn that every
// rank's files are durable through slots of the trainer's per-step control all-reduce
// (fill_control), so a save in flight costs no collective of its own; then rank 0's writer
// thread writes MANIFEST.json, renames the directory, fsyncs the parent, reports the commit
// (hook) and applies retention. The next save waits for the previous one (the only time the
// Checkpointer issues a collective of its own during training).
//
// Thread safety: every public method runs on the training thread, in the same order on every
// rank (they issue collectives); the commit hook runs on rank 0's writer thread, and on the
// training thread of other ranks (their acknowledgement that their files are durable).
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/checkpoint/background_worker.h"
#include "core/checkpoint/safetensors.h"
#include "core/checkpoint/trainer_state.h"
#include "core/config.h"
#include "models/model.h"
#include "optim/optimizer.h"

namespace kiln {

// What the trainer saves and restores besides tensors.
struct TrainProgress {
  int64_t step = 0;    // optimizer steps completed
  int64_t cursor = 0;  // global sample stream position
  int64_t skipped_steps = 0;
  int64_t consecutive_skips = 0;
  double loss_scale = 1.0;  // fp16 dynamic loss scale (1 otherwise)
};

struct CommitInfo {
  int64_t step = 0;
  std::string path;            // the committed directory
  uint64_t bytes = 0;          // all files of the checkpoint
  uint64_t manifest_xxh3 = 0;  // checksum of MANIFEST.json (rank 0; 0 on other ranks)
  double duration_s = 0;       // snapshot + write + commit on rank 0
};
using CommitHook = std::function<void(const CommitInfo&)>;

class Checkpointer {
 public:
  // `model` and `optimizer` outlive the Checkpointer. Collective (rank 0 clears what a crash
  // left in checkpoint.dir, then all ranks meet).
  Checkpointer(const Config& cfg, Communicator& comm, Model& model, Optimizer& optimizer,
               int64_t dataset_size);
  // Waits for writes in flight; never throws.
  ~Checkpointer();

  bool saving_enabled() const { return !cfg_.checkpoint.dir.empty(); }

  // Loads the checkpoint `spec` names: "none", "auto" (the newest one under checkpoint.dir that
  // verifies, skipping others with a warning that says why), or a path (one checkpoint, or a
  // directory of them). Returns where to continue, or nullopt to start fresh. Collective.
  std::optional<TrainProgress> restore(const std::string& spec);

  // Slots the Checkpointer adds to the trainer's per-step control all-reduce (summed over
  // ranks): ranks still writing the save in flight, ranks whose save failed, and rank 0's
  // clock asking for a timed save (checkpoint.every_minutes).
  static constexpr int kControlSlots = 3;
  // This rank's values of those slots, before the step's control all-reduce (local, cheap).
  void fill_control(double* slots) const;
  // At every step end, given the control slots summed over ranks for this step: commits (rank 0)
  // or abandons the save in flight once no rank is still writing it, and starts a save when one
  // is due (checkpoint.every_steps, checkpoint.every_minutes, or `force`). Issues a collective
  // only when a new save must wait for the previous one. Called in the same order on every rank.
  void after_step(const TrainProgress& p, const double* control, bool force = false);
  // Before the optimizer changes parameters or state: waits for a snapshot copy in flight.
  void before_update();
  // End of run: saves `p` unless it is saved already, waits for every write and the commit.
  // Collective.
  void finish(const TrainProgress& p);

  void set_commit_hook(CommitHook hook) { hook_ = std::move(hook); }
  // Time the training loop spent waiting on checkpoints (the stall; the wait for the last save
  // at the end of the run is not counted), and saves started.
  double blocked_seconds() const { return blocked_s_; }
  int64_t saves_started() const { return saves_; }

 private:
  struct Save;  // one save in flight (checkpointer.cc)

  void start_save(const TrainProgress& p);
  // Acts on summed control slots: commits (rank 0) or abandons the save in flight once no rank
  // is still writing it. Returns whether rank 0 wants a timed save.
  bool resolve(const double* control);
  // Waits until this rank's writes are done, then agrees on and resolves the save in flight
  // with an all-reduce of its own.
  void settle();
  void write_files(Save& s);
  void commit(Save& s);
  TrainerState trainer_state(const TrainProgress& p) const;
  void load(const std::string& dir, TrainProgress& out);
  void load_parameters(const std::string& dir);  // model.safetensors into the parameters

  Config cfg_;
  Communicator& comm_;
  Model& model_;
  Optimizer& optimizer_;
  int64_t dataset_size_;
  CommitHook hook_;

  void wait_threads();  // until both threads are idle

  std::unique_ptr<BackgroundWorker> copier_;  // snapshot copies: urgent, the loop waits on them
  std::unique_ptr<BackgroundWorker> writer_;  // files, commits, retention: low priority
  std::unique_ptr<Stream> copy_stream_;
  std::unique_ptr<Event> step_end_;
  // The snapshot: host images of the files this rank writes (model: rank 0 only).
  std::unique_ptr<SafeTensorsImage> model_image_;
  std::unique_ptr<SafeTensorsImage> shard_image_;
  std::shared_ptr<Save> pending_;  // written or being written, not yet committed
  std::shared_future<void> snapshot_done_;
  bool snapshot_in_flight_ = false;
  int64_t last_saved_step_ = -1;
  std::chrono::steady_clock::time_point last_save_time_;
  double blocked_s_ = 0;
  double snapshot_wait_s_ = 0, previous_wait_s_ = 0;  // parts of blocked_s_
  int64_t saves_ = 0;
  Tensor settle_;  // f64 host: the control slots, for settle()'s own all-reduce
};

}  // namespace kiln
