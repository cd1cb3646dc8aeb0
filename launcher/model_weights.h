// Reading a trained model back outside training (kiln sample): the checkpoint folder to use, the
// resolved config its trainer.json holds, and its fp32 weights by name into a built model.
#pragma once

#include <string>

#include "core/config.h"
#include "models/model.h"

namespace kiln {

// `path` itself when it is one checkpoint (holds MANIFEST.json), else the newest checkpoint under
// it whose manifest verifies. Throws naming the folder when there is none.
std::string resolve_checkpoint_dir(const std::string& path);

// Copies every parameter of `model` (built) from the safetensors file at `path`; names and
// shapes must match exactly (an error lists what differs).
void load_model_weights(const std::string& path, Model& model);

// The resolved config that a checkpoint's trainer.json holds, with `overrides` applied.
Config load_checkpoint_config(const std::string& dir, const std::vector<std::string>& overrides);

}  // namespace kiln
