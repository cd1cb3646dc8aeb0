// Logging through spdlog, one logger per subsystem ("train", "comm", "data", ...), every line
// prefixed with r{rank}/{world}. Levels come from KILN_LOG_LEVEL, e.g. "info" or
// "info,comm=debug,data=warn". Thread-safe.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace kiln::log {

// Sets up the sinks and levels; safe to call again after the rank is known (updates the prefix).
void init();
// The logger of one subsystem, created on first use.
std::shared_ptr<spdlog::logger> get(const std::string& subsystem);
// True on rank 0: progress lines and summaries are printed by rank 0 only.
bool is_rank0();
// Re-reads process_context() into the line prefix (called once the rank is known).
void refresh_prefix();

}  // namespace kiln::log

#define KILN_LOG_TRACE(sub, ...) ::kiln::log::get(sub)->trace(__VA_ARGS__)
#define KILN_LOG_DEBUG(sub, ...) ::kiln::log::get(sub)->debug(__VA_ARGS__)
#define KILN_LOG_INFO(sub, ...) ::kiln::log::get(sub)->info(__VA_ARGS__)
#define KILN_LOG_WARN(sub, ...) ::kiln::log::get(sub)->warn(__VA_ARGS__)
#define KILN_LOG_ERROR(sub, ...) ::kiln::log::get(sub)->error(__VA_ARGS__)
// Logs on rank 0 only.
#define KILN_LOG_INFO0(sub, ...)                                   \
  do {                                                             \
    if (::kiln::log::is_rank0()) ::kiln::log::get(sub)->info(__VA_ARGS__); \
  } while (0)
