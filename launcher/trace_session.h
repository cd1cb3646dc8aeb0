// The trace window of one rank (config section trace): measures the clock offset to rank 0 at
// start-up, records the steps trace.start_step .. start_step + steps - 1, then writes
// trace.dir/rank-NNNNN.trace.json and logs what tracing cost (events, bytes, the estimated time
// per step). Also switches NVTX ranges on for the whole run when KILN_NVTX=1.
//
// Thread safety: every method runs on the training thread, at step boundaries, where no
// collective of this rank is in flight.
#pragma once

#include <cstdint>

#include "comm/clock_sync.h"
#include "comm/communicator.h"
#include "core/config.h"

namespace kiln {

class TraceSession {
 public:
  // Collective when trace.dir is set (every rank has the same config: the start-up agreement).
  TraceSession(const Config& cfg, Communicator& comm);
  ~TraceSession();
  TraceSession(const TraceSession&) = delete;
  TraceSession& operator=(const TraceSession&) = delete;

  // Before step `step` (counted from 0) starts; recording starts inside the window (also when
  // a resumed run begins in its middle).
  void before_step(int64_t step);
  // After step `step` has ended: at the window's last step, stops and writes the file.
  void after_step(int64_t step);
  // End of the run: writes what was recorded if the window is still open.
  void finish();

 private:
  void write();

  const Config& cfg_;
  Communicator& comm_;
  bool enabled_ = false;
  int64_t begin_ = 0, end_ = 0;  // the window, steps counted from 0, [begin, end)
  bool active_ = false, written_ = false;
  int64_t first_ = -1, last_ = -1;  // steps actually recorded
  int64_t started_ns_ = 0;
  ClockOffset clock_;
};

}  // namespace kiln
