// `kiln trace merge DIR`: one Chrome trace of every rank, on rank 0's clock.
#include <filesystem>

#include "core/log.h"
#include "launcher/commands.h"
#include "launcher/trace_merge.h"

namespace kiln {

namespace {

struct TraceFlags {
  std::string dir;
  std::string out;
};

int run_merge(const TraceFlags& flags) {
  const std::string out =
      flags.out.empty() ? (std::filesystem::path(flags.dir) / "merged.json").string() : flags.out;
  const MergeSummary s = merge_traces(flags.dir, out);
  std::printf(
      "merged %d ranks (%lld events, steps %lld-%lld) into %s; clocks aligned to rank "
      "0's within +-%.1f us. Open it in https://ui.perfetto.dev or chrome://tracing\n",
      s.ranks, static_cast<long long>(s.events), static_cast<long long>(s.first_step),
      static_cast<long long>(s.last_step), out.c_str(), s.max_clock_error_us);
  return 0;
}

}  // namespace

CommandRunner add_trace_command(CLI::App& app) {
  auto flags = std::make_shared<TraceFlags>();
  CLI::App* cmd = app.add_subcommand("trace", "Work with the timelines that trace.dir records");
  cmd->require_subcommand(1);
  CLI::App* merge = cmd->add_subcommand(
      "merge",
      "Join every rank's trace (DIR/rank-*.trace.json) into one Chrome trace, a process "
      "row per rank, on rank 0's clock");
  merge->add_option("dir", flags->dir, "the trace.dir of a run")->required();
  merge->add_option("--out", flags->out, "output file (default: DIR/merged.json)");
  return [flags, merge]() -> int {
    if (merge->parsed()) return run_merge(*flags);
    return 1;
  };
}

}  // namespace kiln
