// Resuming from a checkpoint: choosing it (rank 0 verifies, every rank follows), checking that
// the config still fits it, and loading parameters, optimizer state (re-sliced from however
// many shards it was saved in) and the trainer's position, each byte read by one rank only.
#include <filesystem>

#include "core/checkpoint/config_compat.h"
#include "core/checkpoint/durable_file.h"
#include "core/checkpoint/layout.h"
#include "core/checkpoint/manifest.h"
#include "core/checkpoint/optim_shards.h"
#include "core/checkpoint/safetensors.h"
#include "core/error.h"
#include "core/log.h"
#include "launcher/checkpointer.h"

namespace kiln {

namespace fs = std::filesystem;

namespace {

std::string joined(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

std::optional<TrainProgress> Checkpointer::restore(const std::string& spec) {
  const bool rank0 = comm_.rank() == 0;
  std::string root, single;
  if (spec == "none" || spec.empty()) {
    if (rank0 && saving_enabled()) {
      int64_t newest = -1;
      for (const CheckpointDir& c : list_checkpoints(cfg_.checkpoint.dir)) {
        if (c.committed) newest = c.step;
      }
      if (newest >= 0) {
        KILN_LOG_WARN("ckpt",
                      "--resume none: {} holds checkpoints up to step {} from an earlier "
                      "run; this run starts over and replaces them as it saves (--resume auto "
                      "would go on from them)",
                      cfg_.checkpoint.dir, newest);
      }
    }
    return std::nullopt;
  }
  if (spec == "auto") {
    if (!saving_enabled()) {
      KILN_LOG_INFO0("ckpt", "--resume auto: checkpoint.dir is not set, starting fresh");
      return std::nullopt;
    }
    root = cfg_.checkpoint.dir;
  } else {
    std::error_code ec;
    KILN_CHECK(fs::is_directory(spec, ec),
               "--resume {}: no such directory. Give auto, none, a "
               "checkpoint (.../step-00001000) or a directory of them",
               spec);
    if (fs::exists(fs::path(spec) / kManifestFile, ec) || parse_step_dir(dir_basename(spec)) >= 0) {
      single = spec;
    } else {
      root = spec;
    }
  }

  // Rank 0 verifies (every checksum) and chooses; the others load what it chose.
  Tensor choice = Tensor::zeros(Shape{1}, DType::f64, cpu_device());
  std::string failure;
  if (rank0) {
    if (!single.empty()) {
      VerifyReport r = verify_checkpoint(single);
      failure = joined(r.problems, "; ");
      choice.data<double>()[0] = r.ok() ? 0 : -1;
    } else {
      std::vector<std::string> skipped;
      std::optional<CheckpointDir> c = newest_valid_checkpoint(root, &skipped);
      for (const std::string& why : skipped) {
        KILN_LOG_WARN("ckpt", "skipping checkpoint {}", why);
      }
      // -1: nothing saved yet; -2: checkpoints exist but none verifies.
      choice.data<double>()[0] = c ? static_cast<double>(c->step) : skipped.empty() ? -1 : -2;
      failure = joined(skipped, "; ");
    }
  }
  comm_.broadcast(choice, 0);
  const double chosen = choice.data<double>()[0];
  if (!single.empty()) {
    KILN_CHECK(chosen >= 0, "--resume {}: the checkpoint does not verify: {}", spec,
               rank0 ? failure : "see rank 0's log");
  } else if (chosen < 0) {
    // Starting over silently would overwrite what may be recoverable by hand.
    KILN_CHECK(
        chosen == -1,
        "--resume: no checkpoint: no checkpoint under {} verifies ({}). Repair or remove them, or "
        "start over with --resume none",
        root, rank0 ? failure : "see rank 0's log");
    KILN_LOG_INFO0("ckpt", "--resume: no checkpoint under {} yet, starting fresh", root);
    return std::nullopt;
  }
  const std::string dir =
      single.empty() ? (fs::path(root) / step_dir_name(static_cast<int64_t>(chosen))).string()
                     : single;
  TrainProgress p;
  load(dir, p);
  return p;
}

void Checkpointer::load(const std::string& dir, TrainProgress& out) {
  const std::string tpath = (fs::path(dir) / kTrainerFile).string();
  const TrainerState ts = parse_trainer_state(read_file(tpath), tpath);

  const ConfigDiff diff = diff_config_for_resume(ts.config_json, cfg_);
  if (!diff.refused.empty()) {
    std::vector<std::string> keys;
    for (const ConfigChange& c : diff.refused) {
      keys.push_back(fmt::format("{}: {} -> {} ({})", c.key, c.before, c.after, c.why));
    }
    KILN_FAIL(
        "cannot resume from {}: the config differs in keys the saved state depends on: {}. "
        "Resume with the saved values (the config is in {}), or start a new run with "
        "--resume none and another checkpoint.dir",
        dir, joined(keys, "; "), tpath);
  }
  for (const ConfigChange& c : diff.allowed) {
    KILN_LOG_INFO0("ckpt", "config changed since the checkpoint: {} {} -> {}", c.key, c.before,
                   c.after);
  }
  KILN_CHECK(ts.model_fingerprint == model_.fingerprint(),
             "cannot resume from {}: its parameters (fingerprint {}) are not this model's ({}); "
             "the model code or its config changed",
             dir, ts.model_fingerprint, model_.fingerprint());
  if (ts.dataset_size != dataset_size_) {
    KILN_LOG_WARN("ckpt",
                  "the checkpoint was trained on {} samples per epoch, this run has {}: "
                  "the sample order from here on differs from the original run",
                  ts.dataset_size, dataset_size_);
  }

  // The ranks read the checkpoint once between them, not once each: rank 0 reads the
  // parameters, every rank 1/world of the optimizer state (from whichever shards hold it, so
  // also at another world size), and collectives hand every rank all of it.
  ParamStore& store = model_.params();
  Device& dev = store.params().device();
  const int rank = comm_.rank(), world = comm_.world();
  const int64_t total = store.total();
  const int64_t chunk = (total + world - 1) / world;
  const FlatRange mine{std::min(total, chunk * rank), std::min(total, chunk * (rank + 1))};
  const std::vector<NamedState> states = optimizer_.state();
  // (chunk) per state on the host, zero-padded past `total` on the last rank.
  std::vector<Tensor> parts;
  std::string error;
  try {
    if (rank == 0) load_parameters(dir);
    const OptimShardSet shards = OptimShardSet::open(dir, ts.world);
    KILN_CHECK(shards.optimizer() == optimizer_.name() && shards.total() == total,
               "{}: optimizer state of {} over {} elements; this run has {} over {}", dir,
               shards.optimizer(), shards.total(), optimizer_.name(), total);
    for (const NamedState& st : states) {
      parts.push_back(Tensor::zeros(Shape{chunk}, DType::f32, cpu_device()));
      shards.read_range(st.name, mine, parts.back().data<float>());
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  // Agree before the collectives that move tensors, so that a rank that failed to read does not
  // leave the others waiting in them.
  Tensor failed = Tensor::zeros(Shape{1}, DType::f64, cpu_device());
  failed.data<double>()[0] = error.empty() ? 0 : 1;
  comm_.all_reduce(failed, ReduceOp::sum, CollectiveTag{"checkpoint load"});
  const double failures = failed.data<double>()[0];
  KILN_CHECK(failures == 0, "cannot resume from {}: {}", dir,
             error.empty()
                 ? fmt::format("{} other rank(s) failed to read it; see their logs", failures)
                 : error);
  comm_.broadcast(store.params(), 0, CollectiveTag{"checkpoint parameters"});
  Tensor part = Tensor::empty(Shape{chunk}, DType::f32, dev);
  Tensor gathered = Tensor::empty(Shape{chunk * world}, DType::f32, dev);
  for (size_t i = 0; i < states.size(); ++i) {
    part.copy_from(parts[i]);
    comm_.all_gather(part, gathered, CollectiveTag{"checkpoint optimizer state"});
    states[i].tensor->copy_from(gathered.view(0, Shape{total}));
  }
  optimizer_.set_steps_taken(ts.optimizer_steps);
  dev.compute_stream().synchronize();

  if (ts.world != comm_.world()) {
    KILN_LOG_INFO0("ckpt",
                   "saved by {} rank(s), resuming on {}: the optimizer state was "
                   "re-sliced from {} shard(s); the data cursor is global, so the run goes on "
                   "over the same samples",
                   ts.world, comm_.world(), ts.world);
  }
  KILN_LOG_INFO0("ckpt", "resumed from {}: step {}, epoch {}, cursor {}, optimizer step {}", dir,
                 ts.step, ts.dataset_size ? ts.cursor / ts.dataset_size : 0, ts.cursor,
                 ts.optimizer_steps);
  out = TrainProgress{ts.step, ts.cursor, ts.skipped_steps, ts.consecutive_skips,
                      ts.loss_scale};
  last_saved_step_ = ts.step;
  last_save_time_ = std::chrono::steady_clock::now();
}

void Checkpointer::load_parameters(const std::string& dir) {
  ParamStore& store = model_.params();
  Device& dev = store.params().device();
  const std::string mpath = (fs::path(dir) / kModelFile).string();
  const SafeTensorFile mf = read_safetensors(mpath);
  KILN_CHECK(mf.entries().size() == store.infos().size(),
             "{} holds {} tensors, the model has {} parameters", mpath, mf.entries().size(),
             store.infos().size());
  for (const ParamInfo& info : store.infos()) {
    const SafeTensorFile::Entry& e = mf.entry(info.name);
    KILN_CHECK(e.dtype == DType::f32 && e.shape == info.shape,
               "{}: '{}' is {} {}, the model expects F32 {}", mpath, info.name,
               safetensors_dtype_name(e.dtype), e.shape.str(), info.shape.str());
    Tensor dst = store.params().view(info.offset, Shape{info.numel});
    dev.copy(dst.raw(), mf.data(info.name), dst.nbytes(), CopyKind::host_to_device);
  }
  dev.compute_stream().synchronize();
}

}  // namespace kiln
