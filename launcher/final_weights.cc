// Final weights and config of a run, and reading them back (see final_weights.h).
#include "launcher/final_weights.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

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

std::string config_to_yaml(const Config& cfg) {
  Config c = cfg;
  return sections_to_yaml(c, nlohmann::json::parse(config_to_json(cfg)));
}

std::string write_final_weights(const Config& cfg, Model& model) {
  const std::string dir = cfg.checkpoint.dir + "/final";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  KILN_CHECK(!ec, "cannot create {} ({}): {}", dir, cfg.where("checkpoint.dir"), ec.message());
  const ParamStore& store = model.params();
  // Host copies, whatever the device.
  std::vector<Tensor> copies;
  std::vector<SafeTensor> tensors;
  for (size_t i = 0; i < store.infos().size(); ++i) {
    const ParamInfo& info = store.infos()[i];
    Tensor p = store.param(static_cast<int>(i)).to(cpu_device());
    KILN_CHECK(p.dtype() == DType::f32, "final weights are written as fp32; the model holds {}",
               dtype_name(p.dtype()));
    copies.push_back(p);
    tensors.push_back(SafeTensor{info.name, DType::f32, info.shape, p.raw()});
  }
  write_safetensors(dir + "/model.safetensors", tensors,
                    {{"format", "pt"},
                     {"model", model.name()},
                     {"fingerprint", model.fingerprint()},
                     {"config_hash", config_hash(cfg)}});
  std::ofstream out(dir + "/config.yaml");
  out << "# The resolved config of the run that wrote model.safetensors (kiln sample reads it).\n"
      << config_to_yaml(cfg);
  out.close();
  KILN_CHECK(!out.fail(), "writing {}/config.yaml failed: {}", dir, errno_string());
  KILN_LOG_INFO("train", "final weights written to {}/model.safetensors", dir);
  return dir;
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
  const std::string yaml = dir + "/config.yaml", trainer = dir + "/trainer.json";
  if (std::filesystem::exists(yaml)) return load_config(yaml, overrides);
  KILN_CHECK(std::filesystem::exists(trainer),
             "{} holds neither config.yaml nor trainer.json; "
             "pass the run's config with --config",
             dir);
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
