// kiln trace merge: rank files written as the trainer writes them, with known clock offsets,
// come out as one trace with a named row per rank and every timestamp on rank 0's clock; a
// missing rank, a stale file of another run and a folder without traces are errors that say so.
#include "launcher/trace_merge.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/trace_file.h"
#include "test_util.h"

namespace kiln::test {
namespace {

namespace fs = std::filesystem;

// A rank's file: one bucket all-reduce on "comm" at local time `ts_us`, one span on "main".
void write_rank(const std::string& dir, int rank, int world, double offset_us, double ts_us,
                const std::string& run = "42.000") {
  trace::Event x{};
  x.name = "all_reduce";
  x.cat = "gradients";
  x.ph = 'X';
  x.ts_ns = static_cast<int64_t>(ts_us * 1e3);
  x.dur_ns = 10000;
  x.nargs = 1;
  x.args[0] = {"seq", 5};
  trace::Event m = x;
  m.name = "backward layers.0 linear";
  m.cat = "layer";
  trace::ThreadEvents comm{2, "comm", {x}, 0}, main{1, "main", {m}, 0};
  const nlohmann::json other = {{"rank", rank},
                                {"world", world},
                                {"clock_offset_us", offset_us},
                                {"clock_error_us", 1.5 + rank},
                                {"run", run},
                                {"first_step", 3},
                                {"last_step", 4}};
  trace::write_text_file(
      (fs::path(dir) / trace::rank_file_name(rank)).string(),
      trace::chrome_trace_json({main, comm}, rank, "rank " + std::to_string(rank), other));
}

nlohmann::json read(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(TraceMerge, PutsEveryRankOnRankZerosClock) {
  TempDir tmp;
  // Rank 1's clock runs 2.5 s ahead of rank 0's, rank 2's 100 us behind; all three ran the
  // all-reduce at the same true time, 1000 us on rank 0's clock.
  write_rank(tmp.path(), 0, 3, 0.0, 1000.0);
  write_rank(tmp.path(), 1, 3, 2.5e6, 2.5e6 + 1000.0);
  write_rank(tmp.path(), 2, 3, -100.0, 900.0);
  const std::string out = tmp.path() + "/merged.json";
  const MergeSummary s = merge_traces(tmp.path(), out);
  EXPECT_EQ(s.ranks, 3);
  EXPECT_EQ(s.events, 6);
  EXPECT_EQ(s.first_step, 3);
  EXPECT_EQ(s.last_step, 4);
  EXPECT_DOUBLE_EQ(s.max_clock_error_us, 3.5);

  const nlohmann::json j = read(out);
  std::map<int, std::string> process;
  std::map<std::pair<int, int>, std::string> thread;
  int reduces = 0;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_name") process[e["pid"]] = e["args"]["name"];
    if (e["ph"] == "M" && e["name"] == "thread_name") {
      thread[{e["pid"].get<int>(), e["tid"].get<int>()}] = e["args"]["name"];
    }
    if (e["ph"] == "X" && e["name"] == "all_reduce") {
      EXPECT_DOUBLE_EQ(e["ts"].get<double>(), 1000.0) << e.dump();
      EXPECT_DOUBLE_EQ(e["dur"].get<double>(), 10.0);
      EXPECT_EQ(e["args"]["seq"], 5);
      ++reduces;
    }
  }
  EXPECT_EQ(reduces, 3);
  EXPECT_EQ(process, (std::map<int, std::string>{{0, "rank 0"}, {1, "rank 1"}, {2, "rank 2"}}));
  EXPECT_EQ(thread[std::make_pair(2, 1)], "main");
  EXPECT_EQ(thread[std::make_pair(2, 2)], "comm");
  EXPECT_EQ(j["otherData"]["kiln"]["clock_offset_us"][1], 2.5e6);
  EXPECT_EQ(list_rank_traces(tmp.path()).size(), 3u);  // merged.json is not a rank file
}

TEST(TraceMerge, MissingRankStaleRunAndEmptyFolderAreErrors) {
  TempDir tmp;
  const std::string out = tmp.path() + "/merged.json";
  std::string m = error_message([&] { merge_traces(tmp.path(), out); });
  EXPECT_TRUE(contains(m, "holds no rank-NNNNN.trace.json files"));

  write_rank(tmp.path(), 0, 3, 0, 1000);
  write_rank(tmp.path(), 2, 3, 0, 1000);
  m = error_message([&] { merge_traces(tmp.path(), out); });
  EXPECT_TRUE(contains(m, "rank 1 of 3 has no trace file"));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));

  write_rank(tmp.path(), 1, 3, 0, 1000, "77.000");  // left by another run
  m = error_message([&] { merge_traces(tmp.path(), out); });
  EXPECT_TRUE(contains(m, "belongs to another run"));
  EXPECT_TRUE(contains(m, "rank-00001.trace.json"));

  fs::remove(fs::path(tmp.path()) / trace::rank_file_name(2));
  write_rank(tmp.path(), 1, 3, 0, 1000);
  m = error_message([&] { merge_traces(tmp.path(), out); });
  EXPECT_TRUE(contains(m, "holds 2 rank traces but the run had 3 ranks"));

  m = error_message([&] { merge_traces(tmp.path() + "/nope", out); });
  EXPECT_TRUE(contains(m, "is not a directory"));
}

}  // namespace
}  // namespace kiln::test
