// Classifying config changes between a checkpoint and the run that resumes it.
#include "core/checkpoint/config_compat.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kiln {

namespace {

// Why a change of `key` cannot be resumed, or "" when it can.
std::string refusal(const ConfigField& f) {
  if (f.path == "model.dropout") return "";  // no parameters depend on it
  if (f.path.rfind("model.", 0) == 0) return "changes the model's parameters";
  if (f.path == "data.name") return "changes the model's input and classes";
  if (f.path == "optim.name") return "the saved optimizer state belongs to another optimizer";
  return "";
}

}  // namespace

ConfigDiff diff_config_for_resume(const std::string& saved_json, const Config& now) {
  nlohmann::json saved, current;
  try {
    saved = nlohmann::json::parse(saved_json);
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("the checkpoint's saved config is not valid JSON ({})", e.what());
  }
  current = nlohmann::json::parse(config_to_json(now));
  Config copy = now;
  ConfigDiff diff;
  for (const ConfigField& f : config_fields(copy)) {
    // Keys of other models do not describe this one (a CNN run ignores model.n_layer).
    if (!f.models.empty() &&
        std::find(f.models.begin(), f.models.end(), now.model.name) == f.models.end()) {
      continue;
    }
    const size_t dot = f.path.find('.');
    const std::string sec = f.path.substr(0, dot), key = f.path.substr(dot + 1);
    const nlohmann::json after = current[sec][key];
    nlohmann::json before;
    if (saved.contains(sec) && saved[sec].contains(key)) before = saved[sec][key];
    if (before == after) continue;
    ConfigChange c{f.path, before.is_null() ? "(absent)" : before.dump(), after.dump(), refusal(f)};
    (c.why.empty() ? diff.allowed : diff.refused).push_back(std::move(c));
  }
  return diff;
}

}  // namespace kiln
