// Prometheus text exposition: writing, and parsing for checks.
#include "launcher/coordinator/prometheus.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace kiln::coord {

std::string prom_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string prom_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);  // shortest form that reads back to the same double
}

void PromWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  std::string h;
  for (char c : help) h += c == '\n' ? std::string("\\n") : std::string(1, c);
  text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, h, name, type);
}

void PromWriter::sample(std::string_view name, Labels labels, double value) {
  text_ += name;
  if (labels.size() > 0) {
    text_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) text_ += ',';
      first = false;
      text_ += fmt::format("{}=\"{}\"", k, prom_escape(v));
    }
    text_ += '}';
  }
  text_ += ' ';
  text_ += prom_number(value);
  text_ += '\n';
}

namespace {

bool name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

double parse_value(std::string_view s, int line) {
  if (s == "NaN") return std::nan("");
  if (s == "+Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  std::string str(s);
  char* end = nullptr;
  double v = std::strtod(str.c_str(), &end);
  KILN_CHECK(!str.empty() && end == str.c_str() + str.size(),
             "metrics line {}: value '{}' is not a number", line, str);
  return v;
}

}  // namespace

PromText parse_prometheus(std::string_view text) {
  PromText out;
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    KILN_CHECK(nl != std::string_view::npos, "metrics line {}: the text must end with a newline",
               line_no + 1);
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# HELP name text" / "# TYPE name type"; other comments are allowed and ignored.
      std::string l(line);
      char kind[8] = {0};
      char name[256] = {0};
      int consumed = 0;
      if (std::sscanf(l.c_str(), "# %7s %255s %n", kind, name, &consumed) >= 2) {
        std::string rest = l.substr(static_cast<size_t>(consumed));
        if (std::string(kind) == "HELP") out.families[name].help = rest;
        if (std::string(kind) == "TYPE") {
          KILN_CHECK(rest == "counter" || rest == "gauge" || rest == "summary" ||
                         rest == "histogram" || rest == "untyped",
                     "metrics line {}: unknown type '{}'", line_no, rest);
          out.families[name].type = rest;
        }
      }
      continue;
    }
    PromSample s;
    size_t i = 0;
    while (i < line.size() && name_char(line[i], i == 0)) ++i;
    KILN_CHECK(i > 0, "metrics line {}: '{}' does not start with a metric name", line_no, line);
    s.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t k0 = i;
        while (i < line.size() && name_char(line[i], i == k0)) ++i;
        std::string key(line.substr(k0, i - k0));
        KILN_CHECK(!key.empty() && i + 1 < line.size() && line[i] == '=' && line[i + 1] == '"',
                   "metrics line {}: malformed label in '{}'", line_no, line);
        i += 2;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
          ++i;
        }
        KILN_CHECK(i < line.size(), "metrics line {}: unterminated label value", line_no);
        ++i;
        s.labels[key] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      KILN_CHECK(i < line.size(), "metrics line {}: unterminated label set", line_no);
      ++i;
    }
    KILN_CHECK(i < line.size() && line[i] == ' ',
               "metrics line {}: expected a space before the "
               "value in '{}'",
               line_no, line);
    std::string_view rest = line.substr(i + 1);
    size_t sp = rest.find(' ');  // an optional timestamp follows the value
    s.value = parse_value(rest.substr(0, sp), line_no);
    out.samples.push_back(std::move(s));
  }
  return out;
}

}  // namespace kiln::coord
