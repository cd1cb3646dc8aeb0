// Which config changes a resume accepts. Keys that change the model's shape (or what the saved
// tensors mean: the dataset, the optimizer) are refused; anything else (learning rate, total
// steps, logging, ...) is allowed, and the caller logs it.
#pragma once

#include <string>
#include <vector>

#include "core/config.h"

namespace kiln {

struct ConfigChange {
  std::string key;     // "optim.lr"
  std::string before;  // JSON text of the saved value
  std::string after;
  std::string why;  // for refused changes: what the saved state would no longer fit
};

struct ConfigDiff {
  std::vector<ConfigChange> refused;
  std::vector<ConfigChange> allowed;
};

// Compares the resolved config saved in a checkpoint (canonical JSON) with the current one.
ConfigDiff diff_config_for_resume(const std::string& saved_json, const Config& now);

}  // namespace kiln
