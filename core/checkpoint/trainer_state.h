// trainer.json: what a run needs besides tensors to go on exactly where it stopped (step, data
// cursor, optimizer step count, skip counters), plus what explains the checkpoint (epoch, RNG
// scheme and seeds, LR schedule position, loss scale, world size, the resolved config and its
// hash, Kiln version).
#pragma once

#include <cstdint>
#include <string>

namespace kiln {

struct TrainerState {
  int64_t step = 0;          // optimizer steps completed; the run goes on with step + 1
  int64_t cursor = 0;        // global sample stream position (samples consumed)
  int64_t dataset_size = 0;  // training samples per epoch
  int64_t optimizer_steps = 0;
  std::string optimizer;
  int64_t skipped_steps = 0;
  int64_t consecutive_skips = 0;
  double lr = 0;  // learning rate of the last step taken
  int64_t total_steps = 0;
  std::string schedule;
  double loss_scale = 1;  // fp32 training does not scale
  int world = 1;
  std::string model_name;
  std::string model_fingerprint;
  int64_t parameters = 0;
  uint64_t train_seed = 0, data_seed = 0;
  std::string config_json;  // canonical resolved config (config_to_json)
  std::string config_hash;
  std::string kiln_version;
};

std::string trainer_state_to_json(const TrainerState& s);
// Parses trainer.json; `origin` names it in errors.
TrainerState parse_trainer_state(const std::string& text, const std::string& origin);

}  // namespace kiln
