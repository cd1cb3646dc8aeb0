// Models by name: model.name in the config picks one; its shape parameters come from model.*.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/model.h"

namespace kiln {

std::vector<std::string> model_names();
// Builds the (unlaid-out) model the config names for data of `spec`; call build() next.
std::unique_ptr<Model> create_model(const Config& cfg, const ModelSpec& spec);

}  // namespace kiln
