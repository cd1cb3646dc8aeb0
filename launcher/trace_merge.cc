// Merging per-rank traces onto rank 0's clock.
#include "launcher/trace_merge.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "core/trace_file.h"

namespace kiln {

namespace fs = std::filesystem;

std::vector<std::string> list_rank_traces(const std::string& dir) {
  std::error_code ec;
  KILN_CHECK(fs::is_directory(dir, ec), "{} is not a directory: give the trace.dir of a run", dir);
  static const std::regex name(R"(rank-\d{5}\.trace\.json)");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && std::regex_match(e.path().filename().string(), name)) {
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  KILN_CHECK(in.good(), "cannot open {}", path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    KILN_FAIL("{} is not valid JSON ({}): a rank may have been killed while writing it", path,
              e.what());
  }
}

}  // namespace

MergeSummary merge_traces(const std::string& dir, const std::string& out) {
  const std::vector<std::string> files = list_rank_traces(dir);
  KILN_CHECK(!files.empty(),
             "{} holds no rank-NNNNN.trace.json files: was the run started with "
             "trace.dir = {}, and did it reach trace.start_step?",
             dir, dir);
  const std::string tmp = out + ".tmp";
  // Removes the partial file when a check below fails.
  struct TmpGuard {
    const std::string& path;
    bool keep = false;
    ~TmpGuard() {
      std::error_code ec;
      if (!keep) fs::remove(path, ec);
    }
  } guard{tmp};
  std::ofstream os(tmp);
  KILN_CHECK(os.good(), "cannot create {}: check that its directory exists", tmp);

  MergeSummary sum;
  std::string run;
  int world = -1;
  nlohmann::json offsets = nlohmann::json::array(), errors = nlohmann::json::array();
  os << "{\"displayTimeUnit\":\"ms\",\n\"traceEvents\":[\n";
  bool first_line = true;
  auto emit = [&](const nlohmann::json& e) {
    os << (first_line ? "" : ",\n") << e.dump();
    first_line = false;
  };
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& path = files[i];
    const nlohmann::json j = read_json(path);
    KILN_CHECK(
        j.contains("otherData") && j["otherData"].contains("kiln") && j.contains("traceEvents"),
        "{} is not a Kiln rank trace (no otherData.kiln / traceEvents)", path);
    const nlohmann::json& k = j["otherData"]["kiln"];
    const int rank = k.at("rank").get<int>();
    if (i == 0) {
      world = k.at("world").get<int>();
      run = k.at("run").get<std::string>();
      sum.first_step = k.value("first_step", int64_t{0});
      sum.last_step = k.value("last_step", int64_t{0});
    }
    KILN_CHECK(k.at("world").get<int>() == world && k.at("run").get<std::string>() == run,
               "{} belongs to another run (world {}, run {}) than {} (world {}, run {}): remove "
               "the stale files from {}",
               path, k.at("world").get<int>(), k.at("run").get<std::string>(), files[0], world, run,
               dir);
    KILN_CHECK(
        rank == static_cast<int>(i) && fs::path(path).filename() == trace::rank_file_name(rank),
        "{} holds rank {}, but rank {} was expected next: rank {} of {} has no trace file "
        "(did it fail before the window ended?)",
        path, rank, i, i, world);
    const double offset = k.at("clock_offset_us").get<double>();
    const double error = k.at("clock_error_us").get<double>();
    offsets.push_back(offset);
    errors.push_back(error);
    sum.max_clock_error_us = std::max(sum.max_clock_error_us, error);
    sum.first_step = std::min(sum.first_step, k.value("first_step", sum.first_step));
    sum.last_step = std::max(sum.last_step, k.value("last_step", sum.last_step));

    // One row per rank, named and ordered by rank; the threads keep their rows and names.
    emit({{"ph", "M"},
          {"pid", rank},
          {"tid", 0},
          {"name", "process_name"},
          {"args", {{"name", "rank " + std::to_string(rank)}}}});
    emit({{"ph", "M"},
          {"pid", rank},
          {"tid", 0},
          {"name", "process_sort_index"},
          {"args", {{"sort_index", rank}}}});
    for (nlohmann::json e : j["traceEvents"]) {
      if (e.value("ph", "") == "M") {
        if (e.value("name", "") == "process_name") continue;
      } else if (e.contains("ts")) {
        // Onto rank 0's clock, rounded to the nanosecond the ranks recorded.
        e["ts"] = std::round((e["ts"].get<double>() - offset) * 1e3) / 1e3;
        ++sum.events;
      }
      e["pid"] = rank;
      emit(e);
    }
  }
  KILN_CHECK(static_cast<int>(files.size()) == world,
             "{} holds {} rank traces but the run had {} ranks: ranks {}..{} have no file (did "
             "they fail before the window ended?)",
             dir, files.size(), world, files.size(), world - 1);
  sum.ranks = world;
  const nlohmann::json other = {{"kiln",
                                 {{"ranks", world},
                                  {"run", run},
                                  {"first_step", sum.first_step},
                                  {"last_step", sum.last_step},
                                  {"events", sum.events},
                                  {"clock", "rank 0's monotonic clock, microseconds"},
                                  {"clock_offset_us", offsets},
                                  {"clock_error_us", errors}}}};
  os << "\n],\n\"otherData\":" << other.dump() << "}\n";
  os.close();
  KILN_CHECK(os.good(), "writing {} failed (disk full?)", tmp);
  std::error_code ec;
  fs::rename(tmp, out, ec);
  KILN_CHECK(!ec, "cannot rename {} to {}: {}", tmp, out, ec.message());
  guard.keep = true;
  return sum;
}

}  // namespace kiln
