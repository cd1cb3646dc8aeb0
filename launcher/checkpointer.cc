// Asynchronous, sharded, atomic checkpoint saving (the restore side is checkpoint_restore.cc).
#include "launcher/checkpointer.h"

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/checkpoint/durable_file.h"
#include "core/checkpoint/layout.h"
#include "core/checkpoint/manifest.h"
#include "core/checkpoint/optim_shards.h"
#include "core/checkpoint/safetensors.h"
#include "core/env.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/trace.h"

namespace kiln {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
}  // namespace

struct Checkpointer::Save {
  int64_t step = 0;
  TrainerState state;
  std::string dir, tmp;  // step-N and step-N.tmp
  std::promise<void> snapshot;
  std::shared_future<void> snapshot_ready;
  std::atomic<int> status{0};  // 0 writing, 1 written and durable, 2 failed
  std::string error;
  uint64_t bytes = 0;  // written by this rank
  double snapshot_s = 0, write_s = 0;
  Clock::time_point started;  // the step boundary the save was taken at
};

Checkpointer::Checkpointer(const Config& cfg, Communicator& comm, Model& model,
                           Optimizer& optimizer, int64_t dataset_size)
    : cfg_(cfg), comm_(comm), model_(model), optimizer_(optimizer), dataset_size_(dataset_size) {
  settle_ = Tensor::zeros(Shape{kControlSlots}, DType::f64, cpu_device());
  last_save_time_ = Clock::now();
  if (!saving_enabled()) return;
  if (comm_.rank() == 0) {
    std::error_code ec;
    fs::create_directories(cfg_.checkpoint.dir, ec);
    KILN_CHECK(!ec, "{} = {}: cannot create the directory: {}", cfg_.where("checkpoint.dir"),
               cfg_.checkpoint.dir, ec.message());
    for (const std::string& name : remove_incomplete(cfg_.checkpoint.dir)) {
      KILN_LOG_INFO("ckpt", "removed {} (an interrupted save or removal)", name);
    }
  }
  comm_.barrier();
  Device& dev = model_.params().params().device();
  copy_stream_ = dev.new_stream();
  step_end_ = dev.new_event();
  copier_ = std::make_unique<BackgroundWorker>("checkpoint snapshot");
  writer_ = std::make_unique<BackgroundWorker>(
      "checkpoint writer", static_cast<int>(env::get_int("KILN_CKPT_WRITER_NICE")));
  // The snapshot goes straight into images of the files, built (and first touched) here and
  // reused by every save: the headers are the same each time, only the tensor bytes change.
  const ParamStore& store = model_.params();
  if (comm_.rank() == 0) {
    std::vector<SafeTensor> tensors;
    for (const ParamInfo& info : store.infos()) {
      tensors.push_back(SafeTensor{info.name, DType::f32, info.shape, nullptr});
    }
    // Constant metadata: the same weights give the same file, whatever the step.
    model_image_ = std::make_unique<SafeTensorsImage>(
        tensors, std::map<std::string, std::string>{{"kiln.kind", "model"},
                                                    {"model", model_.name()},
                                                    {"fingerprint", model_.fingerprint()}});
  }
  OptimShardInfo info;
  info.optimizer = optimizer_.name();
  info.total = store.total();
  info.range = shard_range(info.total, comm_.rank(), comm_.world());
  info.rank = comm_.rank();
  info.world = comm_.world();
  info.model_fingerprint = model_.fingerprint();
  std::vector<StateSlice> slices;
  for (const NamedState& st : optimizer_.state()) slices.push_back(StateSlice{st.name, nullptr});
  shard_image_ = std::make_unique<SafeTensorsImage>(optim_shard_tensors(info, slices),
                                                    optim_shard_metadata(info));
}

Checkpointer::~Checkpointer() {
  // Jobs refer to the snapshot buffers, the model and the optimizer: finish them first.
  writer_.reset();
  copier_.reset();
}

void Checkpointer::wait_threads() {
  copier_->wait_idle();
  writer_->wait_idle();
}

TrainerState Checkpointer::trainer_state(const TrainProgress& p) const {
  TrainerState t;
  t.step = p.step;
  t.cursor = p.cursor;
  t.dataset_size = dataset_size_;
  t.optimizer = optimizer_.name();
  t.optimizer_steps = optimizer_.steps_taken();
  t.skipped_steps = p.skipped_steps;
  t.consecutive_skips = p.consecutive_skips;
  t.total_steps = cfg_.train.steps;
  t.schedule = cfg_.optim.schedule;
  t.lr = learning_rate(cfg_.optim, std::max<int64_t>(0, p.step - 1), cfg_.train.steps);
  t.loss_scale = p.loss_scale;
  t.world = comm_.world();
  t.model_name = model_.name();
  t.model_fingerprint = model_.fingerprint();
  t.parameters = model_.params().count();
  t.train_seed = static_cast<uint64_t>(cfg_.train.seed);
  t.data_seed = static_cast<uint64_t>(cfg_.data.seed);
  t.config_json = config_to_json(cfg_);
  t.config_hash = config_hash(cfg_);
  t.kiln_version = KILN_VERSION;
  return t;
}

void Checkpointer::fill_control(double* slots) const {
  slots[0] = slots[1] = slots[2] = 0;
  if (!saving_enabled()) return;
  if (pending_) {
    const int st = pending_->status.load();
    slots[0] = st == 0 ? 1 : 0;
    slots[1] = st == 2 ? 1 : 0;
  }
  if (comm_.rank() == 0 && cfg_.checkpoint.every_minutes > 0 &&
      seconds_since(last_save_time_) >= cfg_.checkpoint.every_minutes * 60) {
    slots[2] = 1;
  }
}

void Checkpointer::after_step(const TrainProgress& p, const double* control, bool force) {
  if (!saving_enabled()) return;
  const bool timed = resolve(control);
  const int64_t every = cfg_.checkpoint.every_steps;
  const bool due = force || timed || (every > 0 && p.step % every == 0);
  if (due && p.step > 0 && p.step != last_saved_step_) start_save(p);
}

void Checkpointer::before_update() {
  if (!snapshot_in_flight_) return;
  trace::Span span("wait snapshot", "checkpoint");
  const auto t0 = Clock::now();
  snapshot_done_.wait();
  snapshot_in_flight_ = false;
  blocked_s_ += seconds_since(t0);
  snapshot_wait_s_ += seconds_since(t0);
}

void Checkpointer::finish(const TrainProgress& p) {
  if (!saving_enabled()) return;
  if (p.step > 0 && p.step != last_saved_step_) start_save(p);
  const auto t0 = Clock::now();
  if (snapshot_in_flight_) {
    snapshot_done_.wait();
    snapshot_in_flight_ = false;
  }
  if (pending_) settle();
  wait_threads();
  KILN_LOG_INFO0("ckpt",
                 "{} checkpoint(s) saved this run; training waited {:.1f} ms for them "
                 "({:.2f} ms per save: {:.1f} ms in all for snapshot copies, {:.1f} ms for "
                 "previous saves to finish), then {:.1f} ms at the end for the last one",
                 saves_, blocked_s_ * 1e3,
                 saves_ ? blocked_s_ * 1e3 / static_cast<double>(saves_) : 0.0,
                 snapshot_wait_s_ * 1e3, previous_wait_s_ * 1e3, seconds_since(t0) * 1e3);
}

void Checkpointer::settle() {
  trace::Span span("wait previous save", "checkpoint");
  wait_threads();
  fill_control(settle_.data<double>());
  comm_.all_reduce(settle_, ReduceOp::sum, CollectiveTag{"checkpoint"});
  resolve(settle_.data<double>());
}

bool Checkpointer::resolve(const double* control) {
  if (pending_ && control[0] == 0) {
    std::shared_ptr<Save> s = std::move(pending_);
    pending_.reset();
    if (control[1] > 0) {
      KILN_LOG_ERROR("ckpt",
                     "the checkpoint of step {} failed on {} rank(s){}; it is abandoned "
                     "and the previous checkpoint stays the newest",
                     s->step, control[1], s->error.empty() ? "" : " (here: " + s->error + ")");
      if (comm_.rank() == 0) {
        writer_->submit([s] {
          std::error_code ec;
          fs::remove_all(s->tmp, ec);
        });
      }
    } else if (comm_.rank() == 0) {
      writer_->submit([this, s] { commit(*s); });
    } else if (hook_) {
      // This rank's part is durable and every rank agreed: it acknowledges now; rank 0 does
      // once the folder is renamed into place (commit), so a registry that waits for every
      // rank's acknowledgement records the checkpoint only after it is complete on disk.
      hook_(CommitInfo{s->step, s->dir, s->bytes, 0, s->snapshot_s + s->write_s});
    }
  }
  return control[2] > 0;
}

void Checkpointer::start_save(const TrainProgress& p) {
  const auto t0 = Clock::now();
  if (pending_) {  // the next save waits for the previous one
    settle();
    previous_wait_s_ += seconds_since(t0);
  }
  ParamStore& store = model_.params();
  const std::vector<NamedState> states = optimizer_.state();
  const FlatRange range = shard_range(store.total(), comm_.rank(), comm_.world());

  auto s = std::make_shared<Save>();
  s->step = p.step;
  s->started = Clock::now();
  s->state = trainer_state(p);
  s->dir = (fs::path(cfg_.checkpoint.dir) / step_dir_name(p.step)).string();
  s->tmp = s->dir + ".tmp";
  Device& dev = store.params().device();
  step_end_->record(dev.compute_stream());
  s->snapshot_ready = s->snapshot.get_future().share();
  snapshot_done_ = s->snapshot_ready;
  snapshot_in_flight_ = true;
  const bool rank0 = comm_.rank() == 0;
  copier_->submit([this, s, states, range, rank0, &dev] {
    trace::Span span("snapshot", "checkpoint");
    span.arg("step", s->step);
    const auto ts = Clock::now();
    try {
      step_end_->wait(*copy_stream_);
      if (rank0) {
        ParamStore& store = model_.params();
        for (size_t i = 0; i < store.infos().size(); ++i) {
          const ParamInfo& info = store.infos()[i];
          const Tensor src = store.params().view(info.offset, Shape{info.numel});
          dev.copy(model_image_->data(i), src.raw(), src.nbytes(), CopyKind::device_to_host,
                   copy_stream_.get());
        }
      }
      for (size_t i = 0; i < states.size(); ++i) {
        const Tensor src = states[i].tensor->view(range.begin, Shape{range.size()});
        dev.copy(shard_image_->data(i), src.raw(), src.nbytes(), CopyKind::device_to_host,
                 copy_stream_.get());
      }
      copy_stream_->synchronize();
    } catch (const std::exception& e) {
      s->error = e.what();
      s->status = 2;
      KILN_LOG_ERROR("ckpt", "copying the state of step {} to host memory failed: {}", s->step,
                     e.what());
    }
    s->snapshot_s = seconds_since(ts);
    s->snapshot.set_value();
  });
  writer_->submit([this, s] { write_files(*s); });
  pending_ = s;
  last_saved_step_ = p.step;
  last_save_time_ = Clock::now();
  ++saves_;
  blocked_s_ += seconds_since(t0);
}

void Checkpointer::write_files(Save& s) {
  s.snapshot_ready.wait();
  if (s.status == 2) return;  // the snapshot failed
  trace::Span span("write files", "checkpoint");
  span.arg("step", s.step);
  const auto t0 = Clock::now();
  try {
    const int rank = comm_.rank(), world = comm_.world();
    const fs::path tmp(s.tmp);
    fs::create_directories(tmp);
    debug_slow_phase();
    nlohmann::ordered_json digests = nlohmann::ordered_json::array();
    auto record = [&](const std::string& file, const FileDigest& d) {
      digests.push_back({{"file", file}, {"size", d.size}, {"xxh3", hash_hex(d.xxh3)}});
      s.bytes += d.size;
    };
    if (rank == 0) {
      record(kModelFile, model_image_->write((tmp / kModelFile).string()));
      debug_slow_phase();
      record(kTrainerFile,
             write_file_durable((tmp / kTrainerFile).string(), trainer_state_to_json(s.state)));
    }
    const std::string shard = optim_shard_name(rank, world);
    record(shard, shard_image_->write((tmp / shard).string()));
    debug_slow_phase();
    write_file_durable((tmp / rank_digest_name(rank)).string(), digests.dump());
    s.write_s = seconds_since(t0);
    s.status = 1;
  } catch (const std::exception& e) {
    s.error = e.what();
    s.status = 2;
    KILN_LOG_ERROR("ckpt", "writing the checkpoint of step {} failed: {}", s.step, e.what());
  }
}

void Checkpointer::commit(Save& s) {
  trace::Span span("commit", "checkpoint");
  span.arg("step", s.step);
  const auto commit_start = Clock::now();
  const fs::path tmp(s.tmp), root(cfg_.checkpoint.dir);
  try {
    Manifest m;
    m.step = s.step;
    m.world = comm_.world();
    m.kiln_version = KILN_VERSION;
    uint64_t bytes = 0;
    for (int r = 0; r < m.world; ++r) {
      const fs::path part = tmp / rank_digest_name(r);
      const nlohmann::json j = nlohmann::json::parse(read_file(part.string()));
      for (const auto& f : j) {
        ManifestEntry e{f.at("file").get<std::string>(),
                        FileDigest{f.at("size").get<uint64_t>(),
                                   std::stoull(f.at("xxh3").get<std::string>(), nullptr, 16)}};
        const uint64_t on_disk = fs::file_size(tmp / e.file);
        KILN_CHECK(on_disk == e.digest.size, "{}: rank {} wrote {} bytes, {} are on disk",
                   (tmp / e.file).string(), r, e.digest.size, on_disk);
        bytes += e.digest.size;
        m.files.push_back(std::move(e));
      }
    }
    for (int r = 0; r < m.world; ++r) fs::remove(tmp / rank_digest_name(r));
    const FileDigest manifest =
        write_file_durable((tmp / kManifestFile).string(), manifest_to_json(m));
    fsync_dir(s.tmp);
    debug_slow_phase();
    const bool replaced = rename_dir_replacing(s.tmp, s.dir);
    fsync_dir(root.string());
    if (replaced) remove_checkpoint(s.tmp);  // the old checkpoint of this step, swapped out
    KILN_LOG_INFO("ckpt",
                  "committed {} ({:.1f} MB; snapshot {:.1f} ms, rank 0 wrote {:.1f} MB in "
                  "{:.3f} s = {:.0f} MB/s; {:.3f} s from the step to the commit){}",
                  s.dir, bytes / 1e6, s.snapshot_s * 1e3, s.bytes / 1e6, s.write_s,
                  s.bytes / 1e6 / std::max(s.write_s, 1e-9), seconds_since(s.started),
                  replaced ? ", replacing an older checkpoint of the same step" : "");
    if (hook_) {
      hook_(CommitInfo{s.step, s.dir, bytes, manifest.xxh3,
                       s.snapshot_s + s.write_s + seconds_since(commit_start)});
    }

    std::vector<int64_t> steps;
    for (const CheckpointDir& c : list_checkpoints(root.string())) {
      if (c.committed) steps.push_back(c.step);
    }
    for (int64_t victim :
         retention_victims(steps, cfg_.checkpoint.keep_last, cfg_.checkpoint.keep_every)) {
      remove_checkpoint((root / step_dir_name(victim)).string());
      KILN_LOG_DEBUG("ckpt", "retention removed {}", step_dir_name(victim));
    }
  } catch (const std::exception& e) {
    KILN_LOG_ERROR("ckpt",
                   "committing the checkpoint of step {} failed: {}; the previous "
                   "checkpoint stays the newest",
                   s.step, e.what());
    std::error_code ec;
    fs::remove_all(tmp, ec);
  }
}

}  // namespace kiln
