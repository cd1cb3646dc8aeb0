// `kiln trace merge`: joins the per-rank Chrome traces of one run (trace.dir/rank-*.trace.json)
// into one file with a process row per rank, every rank's timestamps moved onto rank 0's clock
// by the offset measured at start-up (comm/clock_sync.h), and metadata naming each process
// ("rank 3") and thread ("main", "comm"). One rank's file is in memory at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

struct MergeSummary {
  int ranks = 0;
  int64_t events = 0;
  int64_t first_step = 0, last_step = 0;
  double max_clock_error_us = 0;  // the largest per-rank bound
};

// Writes the merged trace of the rank files in `dir` to `out` (through a temporary file).
// Throws naming the file when a rank is missing, a file is not a Kiln trace, or the files come
// from different runs.
MergeSummary merge_traces(const std::string& dir, const std::string& out);

// The rank files in `dir`, in rank order (by name).
std::vector<std::string> list_rank_traces(const std::string& dir);

}  // namespace kiln
