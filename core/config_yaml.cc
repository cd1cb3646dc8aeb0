// Loads YAML into Config: the only file that includes yaml-cpp. Overrides (KILN_SET, then
// --set) replace values in the parsed tree before conversion, so they get the same checks.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/config.h"
#include "core/embedded_config.h"
#include "core/env.h"
#include "core/error.h"

namespace kiln {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest(const std::string& word, const std::vector<std::string>& options) {
  std::string best;
  size_t best_d = std::max<size_t>(3, word.size() / 3) + 1;
  for (const std::string& o : options) {
    size_t d = edit_distance(word, o);
    if (d < best_d) {
      best_d = d;
      best = o;
    }
  }
  return best;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string where_node(const std::string& source, const YAML::Node& node) {
  if (node.Mark().is_null()) return source;
  return fmt::format("{}:{}", source, node.Mark().line + 1);
}

[[noreturn]] void fail_at(const std::string& where, const std::string& msg) {
  KILN_FAIL("{}: {}", where, msg);
}

std::string type_name(ConfigField::Kind k) {
  switch (k) {
    case ConfigField::Kind::kInt: return "an integer";
    case ConfigField::Kind::kDouble: return "a number";
    case ConfigField::Kind::kBool: return "true or false";
    case ConfigField::Kind::kString: return "a string";
    case ConfigField::Kind::kIntList: return "a list of integers, e.g. [32, 64]";
  }
  return "?";
}

std::string range_text(const ConfigField& f) {
  if (f.max >= 1e15) return fmt::format("{} {}", f.min_exclusive ? ">" : ">=", f.min);
  return fmt::format("in {}{}, {}]", f.min_exclusive ? "(" : "[", f.min, f.max);
}

void check_range(const ConfigField& f, double v, const std::string& where) {
  if (f.min > f.max) return;
  bool ok = (f.min_exclusive ? v > f.min : v >= f.min) && v <= f.max && std::isfinite(v);
  if (!ok) {
    fail_at(where, fmt::format("{} = {} is out of range: expected a value {}", f.path, v,
                               range_text(f)));
  }
}

int64_t to_int(const ConfigField& f, const YAML::Node& n, const std::string& where) {
  const std::string text = n.Scalar();
  try {
    size_t pos = 0;
    long long v = std::stoll(text, &pos, 10);
    if (pos == text.size()) return v;
  } catch (...) {
  }
  try {  // 2e3 and 1000.0 are integers written as numbers
    size_t pos = 0;
    double d = std::stod(text, &pos);
    if (pos == text.size() && std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.3e18) {
      return static_cast<int64_t>(d);
    }
  } catch (...) {
  }
  fail_at(where, fmt::format("{} = '{}' has the wrong type: expected {}", f.path, text,
                             type_name(f.kind)));
}

void assign(ConfigField& f, const YAML::Node& n, const std::string& where) {
  using Kind = ConfigField::Kind;
  if (f.kind == Kind::kIntList) {
    if (!n.IsSequence()) {
      fail_at(where, fmt::format("{} has the wrong type: expected {}", f.path, type_name(f.kind)));
    }
    std::vector<int64_t> out;
    for (const YAML::Node& e : n) {
      if (!e.IsScalar()) {
        fail_at(where, fmt::format("{} has the wrong type: expected {}", f.path,
                                   type_name(f.kind)));
      }
      int64_t v = to_int(f, e, where);
      check_range(f, static_cast<double>(v), where);
      out.push_back(v);
    }
    if (out.empty()) fail_at(where, fmt::format("{} is empty: give at least one value", f.path));
    *static_cast<std::vector<int64_t>*>(f.ptr) = out;
    return;
  }
  if (n.IsNull() && f.kind == Kind::kString) {
    static_cast<std::string*>(f.ptr)->clear();
    return;
  }
  if (!n.IsScalar()) {
    fail_at(where, fmt::format("{} has the wrong type: expected {}", f.path, type_name(f.kind)));
  }
  const std::string text = n.Scalar();
  switch (f.kind) {
    case Kind::kInt: {
      int64_t v = to_int(f, n, where);
      check_range(f, static_cast<double>(v), where);
      *static_cast<int64_t*>(f.ptr) = v;
      break;
    }
    case Kind::kDouble: {
      double v = 0;
      if (!YAML::convert<double>::decode(n, v)) {
        fail_at(where, fmt::format("{} = '{}' has the wrong type: expected {}", f.path, text,
                                   type_name(f.kind)));
      }
      check_range(f, v, where);
      *static_cast<double*>(f.ptr) = v;
      break;
    }
    case Kind::kBool: {
      bool v = false;
      if (!YAML::convert<bool>::decode(n, v)) {
        fail_at(where, fmt::format("{} = '{}' has the wrong type: expected {}", f.path, text,
                                   type_name(f.kind)));
      }
      *static_cast<bool*>(f.ptr) = v;
      break;
    }
    case Kind::kString: {
      if (!f.choices.empty() &&
          std::find(f.choices.begin(), f.choices.end(), text) == f.choices.end()) {
        std::string hint = closest(text, f.choices);
        fail_at(where, fmt::format("{} = '{}' is not allowed: expected one of {}{}", f.path, text,
                                   join(f.choices),
                                   hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
      }
      *static_cast<std::string*>(f.ptr) = text;
      break;
    }
    case Kind::kIntList: break;
  }
}

struct Override {
  std::string key, value, origin;
};

std::vector<Override> parse_overrides(const std::vector<std::string>& items,
                                      const std::string& origin) {
  std::vector<Override> out;
  for (const std::string& raw : items) {
    std::string item = raw;
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    KILN_CHECK(eq != std::string::npos && eq > 0,
               "{} '{}' is not of the form section.key=value (e.g. train.steps=100)", origin,
               item);
    out.push_back({item.substr(0, eq), item.substr(eq + 1), fmt::format("{} {}", origin, item)});
  }
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

}  // namespace

const std::string& embedded_default_config() {
  static const std::string text = kEmbeddedDefaultConfig;
  return text;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  if (path.empty()) {
    return load_config_text(embedded_default_config(), "embedded:cnn_fashion.yaml",
                            overrides);
  }
  std::ifstream in(path);
  KILN_CHECK(in.good(), "cannot read config file {}: {}; check the path given to --config", path,
             errno_string());
  std::stringstream ss;
  ss << in.rdbuf();
  return load_config_text(ss.str(), path, overrides);
}

Config load_config_text(const std::string& yaml, const std::string& source,
                        const std::vector<std::string>& cli_overrides) {
  Config cfg;
  cfg.source = source;
  std::vector<ConfigField> fields = config_fields(cfg);
  std::vector<std::string> sections = config_sections();

  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    KILN_FAIL("{}:{}: invalid YAML: {}", source, e.mark.line + 1, e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  KILN_CHECK(root.IsMap(), "{}: the top level must be a mapping of sections ({})", source,
             join(sections));

  auto find_field = [&](const std::string& path) -> ConfigField* {
    for (ConfigField& f : fields) {
      if (f.path == path) return &f;
    }
    return nullptr;
  };
  auto unknown_key = [&](const std::string& path, const std::string& where) {
    std::vector<std::string> all;
    for (const ConfigField& f : fields) all.push_back(f.path);
    const size_t dot = path.find('.');
    std::string section = path.substr(0, dot);
    std::string hint = closest(path, all);
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) {
      fail_at(where, fmt::format("'{}' is not a known section: expected one of {}{}", section,
                                 join(sections),
                                 hint.empty() ? "" : fmt::format(" (did you mean {}?)", hint)));
    }
    std::vector<std::string> keys;
    for (const ConfigField& f : fields) {
      if (f.path.rfind(section + ".", 0) == 0) keys.push_back(f.path.substr(section.size() + 1));
    }
    fail_at(where, fmt::format("{} is not a known key{}; the keys of {} are: {}", path,
                               hint.empty() ? "" : fmt::format(" (did you mean {}?)", hint),
                               section, join(keys)));
  };

  // Values from the file, in file order, each with where it was set (errors name that place,
  // even when a later override replaces the value).
  struct Value {
    ConfigField* field;
    YAML::Node node;
    std::string where;
  };
  std::vector<Value> values;
  for (auto sec : root) {
    const std::string sname = sec.first.Scalar();
    const std::string where = where_node(source, sec.first);
    if (std::find(sections.begin(), sections.end(), sname) == sections.end()) {
      unknown_key(sname + ".", where);
    }
    if (sec.second.IsNull()) continue;
    if (!sec.second.IsMap()) fail_at(where, fmt::format("section {} must be a mapping", sname));
    for (auto kv : sec.second) {
      const std::string path = sname + "." + kv.first.Scalar();
      const std::string kwhere = where_node(source, kv.first);
      ConfigField* f = find_field(path);
      if (!f) unknown_key(path, kwhere);
      cfg.origin[path] = kwhere;
      values.push_back({f, kv.second, kwhere});
    }
  }
  // Then KILN_SET, then --set: later values win.
  std::vector<Override> overrides = parse_overrides(split(env::get("KILN_SET"), ';'), "KILN_SET");
  for (Override& o : parse_overrides(cli_overrides, "--set")) overrides.push_back(o);
  for (const Override& o : overrides) {
    ConfigField* f = find_field(o.key);
    if (!f) unknown_key(o.key, o.origin);
    YAML::Node n;
    try {
      n = YAML::Load(o.value);
    } catch (const YAML::Exception& e) {
      fail_at(o.origin, fmt::format("{}: value '{}' is not valid YAML: {}", o.key, o.value, e.msg));
    }
    if (f->kind == ConfigField::Kind::kString && n.IsNull()) n = YAML::Node("");
    cfg.origin[o.key] = o.origin;
    values.push_back({f, n, o.origin});
  }
  for (Value& v : values) assign(*v.field, v.node, v.where);

  // Model keys belong to particular models.
  for (const ConfigField& f : fields) {
    if (f.models.empty() || !cfg.origin.count(f.path)) continue;
    if (std::find(f.models.begin(), f.models.end(), cfg.model.name) != f.models.end()) continue;
    std::vector<std::string> keys;
    for (const ConfigField& g : fields) {
      if (g.path.rfind("model.", 0) == 0 && g.path != "model.name" &&
          (g.models.empty() ||
           std::find(g.models.begin(), g.models.end(), cfg.model.name) != g.models.end())) {
        keys.push_back(g.path.substr(6));
      }
    }
    fail_at(cfg.origin[f.path],
            fmt::format("{} is not a parameter of model '{}' (its parameters are: {})", f.path,
                        cfg.model.name, join(keys)));
  }
  validate_config(cfg);
  return cfg;
}

}  // namespace kiln
