// Stopgap until checkpoints (DESIGN decision 8) land: at the end of a run with checkpoint.dir
// set, rank 0 writes the final weights and the resolved config to <checkpoint.dir>/final/
// (model.safetensors + config.yaml), which is what `kiln sample --checkpoint` reads. Also the
// reading side: weights by name into a built model, and the config a checkpoint folder holds.
#pragma once

#include <string>

#include "core/config.h"
#include "models/model.h"

namespace kiln {

// Writes <checkpoint.dir>/final/{model.safetensors, config.yaml}; returns the folder.
std::string write_final_weights(const Config& cfg, Model& model);

// Copies every parameter of `model` (built) from the safetensors file at `path`; names and
// shapes must match exactly (an error lists what differs).
void load_model_weights(const std::string& path, Model& model);

// The resolved config as YAML holding only the keys that apply to its model, so that
// load_config_text() reads it back to the same values.
std::string config_to_yaml(const Config& cfg);

// The config of a checkpoint folder: config.yaml (this stopgap), or the "config" object of
// trainer.json (checkpoints). Throws naming both when neither exists.
Config load_checkpoint_config(const std::string& dir, const std::vector<std::string>& overrides);

}  // namespace kiln
