// The tracer's file format: Chrome trace JSON (the "JSON object" form that Perfetto and
// chrome://tracing open), one file per rank. ts and dur are microseconds of the rank's own
// monotonic clock; pid is the rank, tid the thread row; "otherData.kiln" carries what merging
// needs (rank, world, the clock offset to rank 0 and its error bound, the run id).
//
// Thread safety: plain functions over the copies that trace::snapshot() returns.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/trace.h"

namespace kiln::trace {

// The file name of `rank`'s trace inside a trace directory: rank-00003.trace.json.
std::string rank_file_name(int rank);

// The whole file: process and thread name metadata, then every event, then `other` under
// "otherData.kiln".
std::string chrome_trace_json(const std::vector<ThreadEvents>& threads, int pid,
                              const std::string& process_name, const nlohmann::json& other);

// Writes `text` to `path` through a temporary file and a rename, so that a reader never sees
// half a trace. Returns the bytes written; throws naming the path.
size_t write_text_file(const std::string& path, const std::string& text);

}  // namespace kiln::trace
