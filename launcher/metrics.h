// Metrics as JSON lines (one object per line, appended) and the live progress line on rank 0.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace kiln {

class MetricsWriter {
 public:
  // An empty path writes nothing. The file's folder is created; lines are appended.
  explicit MetricsWriter(const std::string& path);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Progress on stderr: a line that rewrites itself when stderr is a terminal, and a permanent
// log line every `log_every` steps.
class Progress {
 public:
  explicit Progress(bool enabled);
  // Rewrites the live line (at most a few times a second).
  void live(const std::string& text);
  // Clears the live line before a log line is printed.
  void clear();

 private:
  bool enabled_;
  bool tty_;
  bool shown_ = false;
  double last_ = 0;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"

}  // namespace kiln
