// JSON-lines metrics and the progress line.
#include "launcher/metrics.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "core/error.h"

namespace kiln {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  if (path.empty()) return;
  std::filesystem::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
    KILN_CHECK(!ec, "cannot create the folder of metrics.path {}: {}", path, ec.message());
  }
  file_ = std::fopen(path.c_str(), "a");
  KILN_CHECK(file_ != nullptr, "cannot open metrics.path {} for appending: {}", path,
             errno_string());
}

MetricsWriter::~MetricsWriter() {
  if (file_) std::fclose(file_);
}

void MetricsWriter::write(const nlohmann::json& record) {
  if (!file_) return;
  std::string line = record.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

Progress::Progress(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO) == 1) {}

void Progress::live(const std::string& text) {
  if (!enabled_ || !tty_) return;
  double now = std::chrono::duration<double>(
                   std::chrono::steady_clock::now().time_since_epoch()).count();
  if (now - last_ < 0.25) return;
  last_ = now;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void Progress::clear() {
  if (!shown_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  shown_ = false;
}

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
}

}  // namespace kiln
