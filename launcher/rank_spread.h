// The straggler report: how the ranks' per-step work (data loading + forward/backward, the part
// every other rank waits for at the gradient all-reduce) spreads, and which rank is slowest.
// The per-rank numbers travel in the step's control all-reduce on logging steps.
#pragma once

#include <cstdint>
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

}  // namespace kiln
