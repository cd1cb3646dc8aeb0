// `kiln config`: the resolved configuration, and the reference of every key (the README's config
// reference is generated from it, so the two cannot drift).
#include <fmt/format.h>

#include <cstdio>

#include "core/config.h"
#include "launcher/commands.h"

namespace kiln {

namespace {

struct ConfigFlags {
  std::string config;
  std::vector<std::string> set;
  bool markdown = false;
};

std::string default_text(const ConfigField& f) {
  switch (f.kind) {
    case ConfigField::Kind::kInt:
      return std::to_string(*static_cast<int64_t*>(f.ptr));
    case ConfigField::Kind::kDouble:
      return fmt::format("{}", *static_cast<double*>(f.ptr));
    case ConfigField::Kind::kBool:
      return *static_cast<bool*>(f.ptr) ? "true" : "false";
    case ConfigField::Kind::kString: {
      const std::string& s = *static_cast<std::string*>(f.ptr);
      return s.empty() ? "\"\"" : s;
    }
    case ConfigField::Kind::kIntList: {
      std::string s;
      for (int64_t v : *static_cast<std::vector<int64_t>*>(f.ptr)) {
        s += (s.empty() ? "" : ", ") + std::to_string(v);
      }
      return "[" + s + "]";
    }
  }
  return "";
}

int print_keys(bool markdown) {
  Config defaults;
  if (markdown) std::printf("| key | default | meaning |\n|---|---|---|\n");
  for (const ConfigField& f : config_fields(defaults)) {
    std::string help = f.help;
    if (!f.choices.empty()) {
      std::string c;
      for (const std::string& x : f.choices) c += (c.empty() ? "" : " | ") + x;
      help += " (" + c + ")";
    }
    if (!f.models.empty()) {
      std::string m;
      for (const std::string& x : f.models) m += (m.empty() ? "" : ", ") + x;
      help += " [model: " + m + "]";
    }
    if (markdown) {
      std::printf("| `%s` | `%s` | %s |\n", f.path.c_str(), default_text(f).c_str(), help.c_str());
    } else {
      std::printf("%-28s %-22s %s\n", f.path.c_str(), default_text(f).c_str(), help.c_str());
    }
  }
  return 0;
}

}  // namespace

CommandRunner add_config_command(CLI::App& app) {
  auto flags = std::make_shared<ConfigFlags>();
  CLI::App* cmd = app.add_subcommand("config", "Show the resolved configuration or every key");
  cmd->require_subcommand(1);
  CLI::App* show = cmd->add_subcommand("show", "Print the resolved configuration as a table");
  show->add_option("-c,--config", flags->config, "YAML config (default: the embedded one)")
      ->check(CLI::ExistingFile);
  show->add_option("--set", flags->set, "override a key, e.g. --set train.steps=100")
      ->allow_extra_args(false);  // one key=value per --set: a following -- ends the flags
  CLI::App* keys = cmd->add_subcommand("keys", "List every key with its default and meaning");
  keys->add_flag("--markdown", flags->markdown, "as a Markdown table (the README's reference)");
  return [flags, show] {
    if (show->parsed()) {
      std::fputs(config_table(load_config(flags->config, flags->set)).c_str(), stdout);
      return 0;
    }
    return print_keys(flags->markdown);
  };
}

}  // namespace kiln
