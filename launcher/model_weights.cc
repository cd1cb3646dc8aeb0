// Reading a trained model back from a checkpoint (see model_weights.h).
#include "launcher/model_weights.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/checkpoint/layout.h"
#include "core/checkpoint/safetensors.h"
#include "core/log.h"

namespace kiln {

namespace {

// YAML text of sections -> keys -> JSON values (JSON scalars and arrays are valid YAML), keeping
// only the keys that apply to the config's model.
std::string sections_to_yaml(Config& c, const nlohmann::json& j) {
  std::string out;
  std::string section;
  for (const ConfigField& f : config_fields(c)) {
    if (!f.models.empty() &&
        std::find(f.models.begin(), f.models.end(), c.model.name) == f.models.end()) {
      continue;
    }
    const size_t dot = f.path.find('.');
    const std::string sec = f.path.substr(0, dot), key = f.path.substr(dot + 1);
    if (!j.contains(sec) || !j[sec].contains(key)) continue;
    if (sec != section) {
      out += sec + ":\n";
      section = sec;
    }
    out += fmt::format("  {}: {}\n", key, j[sec][key].dump());
  }
  return out;
}

}  // namespace

std::string resolve_checkpoint_dir(const std::string& path) {
  if (std::filesystem::exists(path + "/MANIFEST.json")) return path;
  std::vector<std::string> skipped;
  std::optional<CheckpointDir> newest = newest_valid_checkpoint(path, &skipped);
  for (const std::string& why : skipped) KILN_LOG_WARN("ckpt", "skipping {}", why);
  KILN_CHECK(newest.has_value(), "{} holds no checkpoint whose manifest verifies; give a "
             "checkpoint folder (step-N) or a checkpoint.dir with committed checkpoints", path);
  return newest->path;
}

void load_model_weights(const std::string& path, Model& model) {
  SafeTensorFile f = read_safetensors(path);
  ParamStore& store = model.params();
  for (size_t i = 0; i < store.infos().size(); ++i) {
    const ParamInfo& info = store.infos()[i];
    KILN_CHECK(f.contains(info.name),
               "{} has no tensor '{}', which model {} needs; was it "
               "written for another model or config?",
               path, info.name, model.name());
    KILN_CHECK(f.dtype(info.name) == DType::f32 && f.shape(info.name) == info.shape,
               "{}: tensor '{}' is {} {}, the model needs F32 {}", path, info.name,
               safetensors_dtype_name(f.dtype(info.name)), f.shape(info.name).str(),
               info.shape.str());
    Tensor src = Tensor::empty(info.shape, DType::f32, cpu_device());
    std::copy_n(static_cast<const float*>(f.data(info.name)), info.numel, src.data<float>());
    store.param(static_cast<int>(i)).copy_from(src);
  }
  KILN_CHECK(f.names().size() == store.infos().size(),
             "{} holds {} tensors but model {} has {} "
             "parameters",
             path, f.names().size(), model.name(), store.infos().size());
}

Config load_checkpoint_config(const std::string& dir, const std::vector<std::string>& overrides) {
  const std::string trainer = dir + "/trainer.json";
  KILN_CHECK(std::filesystem::exists(trainer),
             "{} holds no trainer.json; pass the run's config with --config", dir);
  std::ifstream in(trainer);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("{} is not valid JSON ({}); pass the run's config with --config", trainer, e.what());
  }
  nlohmann::json c = j.contains("config") ? j["config"] : nlohmann::json();
  if (c.is_string()) c = nlohmann::json::parse(c.get<std::string>());
  KILN_CHECK(c.is_object() && c.contains("model") && c["model"].contains("name"),
             "{} holds no resolved config under \"config\"; pass the run's config with --config",
             trainer);
  Config base;
  base.model.name = c["model"]["name"].get<std::string>();
  return load_config_text(sections_to_yaml(base, c), trainer, overrides);
}

}  // namespace kiln
