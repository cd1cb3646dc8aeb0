// The straggler report: how the ranks' per-step work (data loading + forward/backward, the part
// every other rank waits for at the gradient all-reduce) spreads, and which rank is slowest.
// The per-rank numbers travel in the step's control all-reduce on logging steps.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kiln {

struct RankSpread {
  double min = 0, median = 0, max = 0;
  int slowest = 0;  // the rank holding max (the lowest such rank)
  int fastest = 0;  // the rank holding min
};

// Over one value per rank (at least one).
RankSpread rank_spread(const std::vector<double>& per_rank);

// The log line: "ranks at step 20: work (data + forward/backward) per step min 10.20 | median
// ... ms; slowest rank 1 (+12.3% over the median); gradient wait ...".
std::string rank_spread_line(int64_t step, const RankSpread& work, const RankSpread& wait);

// The 2 x world slots that follow the control all-reduce's own on logging steps: this rank
// writes its two numbers and zeros the rest, so that the sum over ranks gathers everyone's.
void fill_rank_slots(double* slots, int rank, int world, double work_ms, double wait_ms);
void read_rank_slots(const double* slots, int world, std::vector<double>& work_ms,
                     std::vector<double>& wait_ms);

// Rank 0 at a logging step: logs the line and adds rank_work_ms_{min,median,max} and
// slowest_rank to the metrics record.
void report_ranks(int64_t step, const std::vector<double>& work_ms,
                  const std::vector<double>& wait_ms, nlohmann::json& record);

}  // namespace kiln
