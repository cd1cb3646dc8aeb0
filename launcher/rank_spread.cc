// Spread of per-rank step work: min, median, max and the ranks at the ends.
#include "launcher/rank_spread.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "core/log.h"

namespace kiln {

RankSpread rank_spread(const std::vector<double>& per_rank) {
  KILN_CHECK(!per_rank.empty(), "rank_spread of no ranks");
  RankSpread s;
  const auto [lo, hi] = std::minmax_element(per_rank.begin(), per_rank.end());
  s.min = *lo;
  s.max = *hi;
  s.fastest = static_cast<int>(lo - per_rank.begin());
  // minmax_element returns the last maximum; the report names the lowest rank holding it.
  s.slowest =
      static_cast<int>(std::find(per_rank.begin(), per_rank.end(), s.max) - per_rank.begin());
  std::vector<double> sorted = per_rank;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return s;
}

std::string rank_spread_line(int64_t step, const RankSpread& work, const RankSpread& wait) {
  const double over = work.median > 0 ? 100.0 * (work.max - work.median) / work.median : 0.0;
  return fmt::format(
      "ranks at step {}: work (data + forward/backward) per step min {:.2f} | "
      "median {:.2f} | max {:.2f} ms; slowest rank {} ({:+.1f}% over the median); "
      "gradient wait per step min {:.2f} (rank {}) | max {:.2f} ms (rank {})",
      step, work.min, work.median, work.max, work.slowest, over, wait.min, wait.fastest, wait.max,
      wait.slowest);
}

void fill_rank_slots(double* slots, int rank, int world, double work_ms, double wait_ms) {
  std::fill(slots, slots + 2 * world, 0.0);
  slots[rank] = work_ms;
  slots[world + rank] = wait_ms;
}

void read_rank_slots(const double* slots, int world, std::vector<double>& work_ms,
                     std::vector<double>& wait_ms) {
  work_ms.assign(slots, slots + world);
  wait_ms.assign(slots + world, slots + 2 * world);
}

void report_ranks(int64_t step, const std::vector<double>& work_ms,
                  const std::vector<double>& wait_ms, nlohmann::json& record) {
  const RankSpread work = rank_spread(work_ms);
  KILN_LOG_INFO("train", "{}", rank_spread_line(step, work, rank_spread(wait_ms)));
  record["rank_work_ms_min"] = work.min;
  record["rank_work_ms_median"] = work.median;
  record["rank_work_ms_max"] = work.max;
  record["slowest_rank"] = work.slowest;
}

}  // namespace kiln
