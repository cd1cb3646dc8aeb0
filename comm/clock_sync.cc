// Clock offsets to rank 0 from all-reduce round trips.
#include "comm/clock_sync.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "core/trace.h"

namespace kiln {

ClockOffset clock_offset_from_rounds(const std::vector<ClockRound>& mine,
                                     const std::vector<ClockRound>& root) {
  KILN_CHECK(!mine.empty() && mine.size() == root.size(),
             "clock offset: {} rounds on this rank, {} on rank 0", mine.size(), root.size());
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < mine.size(); ++i) {
    lo = std::max(lo, mine[i].before_us - root[i].after_us);
    hi = std::min(hi, mine[i].after_us - root[i].before_us);
  }
  KILN_CHECK(lo <= hi,
             "clock offset: the rounds' bounds do not intersect ([{}, {}] us): a "
             "clock went backwards or jumped during the measurement",
             lo, hi);
  ClockOffset r;
  r.offset_us = (lo + hi) / 2;
  r.error_us = (hi - lo) / 2;
  r.root_start_us = root.front().before_us;
  return r;
}

ClockOffset measure_clock_offset(Communicator& comm, int rounds) {
  KILN_CHECK(rounds >= 1, "clock offset: {} rounds", rounds);
  Tensor token = Tensor::zeros(Shape{1}, DType::f64, cpu_device());
  std::vector<ClockRound> mine(static_cast<size_t>(rounds));
  for (ClockRound& r : mine) {
    r.before_us = static_cast<double>(trace::now_ns()) / 1e3;
    comm.all_reduce(token, ReduceOp::sum, CollectiveTag{"clock sync"});
    r.after_us = static_cast<double>(trace::now_ns()) / 1e3;
  }
  Tensor root = Tensor::zeros(Shape{2 * rounds}, DType::f64, cpu_device());
  double* p = root.data<double>();
  if (comm.rank() == 0) {
    for (int i = 0; i < rounds; ++i) {
      p[2 * i] = mine[static_cast<size_t>(i)].before_us;
      p[2 * i + 1] = mine[static_cast<size_t>(i)].after_us;
    }
  }
  comm.broadcast(root, 0, CollectiveTag{"clock sync"});
  std::vector<ClockRound> theirs(static_cast<size_t>(rounds));
  for (int i = 0; i < rounds; ++i) theirs[static_cast<size_t>(i)] = {p[2 * i], p[2 * i + 1]};
  if (comm.rank() == 0) {
    ClockOffset r;
    r.root_start_us = theirs.front().before_us;
    return r;
  }
  return clock_offset_from_rounds(mine, theirs);
}

}  // namespace kiln
