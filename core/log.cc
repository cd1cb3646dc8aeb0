// Subsystem loggers sharing one stderr sink; the prefix carries the rank once it is known.
#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include "core/error.h"

namespace kiln::log {
namespace {

struct State {
  std::mutex mu;
  std::shared_ptr<spdlog::sinks::sink> sink;
  spdlog::level::level_enum default_level = spdlog::level::info;
  std::map<std::string, spdlog::level::level_enum> levels;
  std::map<std::string, std::shared_ptr<spdlog::logger>> loggers;
  bool initialised = false;
};

State& state() {
  static State s;
  return s;
}

spdlog::level::level_enum parse_level(const std::string& s) {
  auto lvl = spdlog::level::from_str(s);
  if (lvl == spdlog::level::off && s != "off") return spdlog::level::info;
  return lvl;
}

std::string pattern() {
  const ProcessContext& ctx = process_context();
  // World 0: a process that is no rank (the kiln launch supervisor).
  if (ctx.world <= 0) return "%H:%M:%S.%e launch %^%L%$ [%n] %v";
  return fmt::format("%H:%M:%S.%e r{}/{} %^%L%$ [%n] %v", ctx.rank, ctx.world);
}

void init_locked(State& s) {
  if (s.initialised) return;
  s.sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  s.sink->set_pattern(pattern());
  if (const char* env = std::getenv("KILN_LOG_LEVEL")) {
    // "info,comm=debug": a bare word sets the default, sub=level sets one subsystem.
    std::string spec = env;
    size_t start = 0;
    while (start <= spec.size()) {
      size_t end = spec.find(',', start);
      if (end == std::string::npos) end = spec.size();
      std::string item = spec.substr(start, end - start);
      size_t eq = item.find('=');
      if (eq == std::string::npos) {
        if (!item.empty()) s.default_level = parse_level(item);
      } else {
        s.levels[item.substr(0, eq)] = parse_level(item.substr(eq + 1));
      }
      start = end + 1;
    }
  }
  s.initialised = true;
}

}  // namespace

void init() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  init_locked(s);
}

void refresh_prefix() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  init_locked(s);
  s.sink->set_pattern(pattern());
}

std::shared_ptr<spdlog::logger> get(const std::string& subsystem) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.loggers.find(subsystem);
  if (it != s.loggers.end()) return it->second;
  init_locked(s);
  auto logger = std::make_shared<spdlog::logger>(subsystem, s.sink);
  auto lvl = s.levels.find(subsystem);
  logger->set_level(lvl != s.levels.end() ? lvl->second : s.default_level);
  logger->flush_on(spdlog::level::warn);
  s.loggers.emplace(subsystem, logger);
  return logger;
}

bool is_rank0() { return process_context().rank == 0; }

}  // namespace kiln::log
