// Prometheus text exposition (format 0.0.4): metric families with HELP and TYPE lines, samples
// with escaped label values, and numbers in the format's spelling (NaN, +Inf, -Inf). Also the
// reverse, a parser of that text, for tests and `kiln status`-like tools.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::coord {

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

class PromWriter {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, Labels labels, double value);
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// `\`, `"` and newlines escaped as the format asks.
std::string prom_escape(std::string_view value);
std::string prom_number(double v);

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
struct PromFamily {
  std::string type, help;
};
struct PromText {
  std::vector<PromSample> samples;
  std::map<std::string, PromFamily> families;
};
// Parses exposition text; throws kiln::Error naming the line that does not follow the format.
PromText parse_prometheus(std::string_view text);

}  // namespace kiln::coord
