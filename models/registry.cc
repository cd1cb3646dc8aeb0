// The table of built-in models.
#include "models/registry.h"

namespace kiln {

std::unique_ptr<Model> make_mlp(const Config& cfg, const ModelSpec& spec);
std::unique_ptr<Model> make_cnn(const Config& cfg, const ModelSpec& spec);
std::unique_ptr<Model> make_gpt(const Config& cfg, const ModelSpec& spec);

namespace {

struct Entry {
  const char* name;
  std::unique_ptr<Model> (*make)(const Config&, const ModelSpec&);
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {"mlp", &make_mlp},
      {"cnn", &make_cnn},
      {"gpt", &make_gpt},
  };
  return table;
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const Entry& e : entries()) out.push_back(e.name);
  return out;
}

std::unique_ptr<Model> create_model(const Config& cfg, const ModelSpec& spec) {
  for (const Entry& e : entries()) {
    if (cfg.model.name == e.name) return e.make(cfg, spec);
  }
  std::string names;
  for (const std::string& n : model_names()) names += (names.empty() ? "" : ", ") + n;
  KILN_FAIL("{} = '{}' is not a known model; the models are: {}", cfg.where("model.name"),
            cfg.model.name, names);
}

}  // namespace kiln
