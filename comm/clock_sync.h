// The offset between this rank's monotonic clock and rank 0's, measured through the
// communicator, so that per-rank traces can be put on one time axis.
//
// Method: every rank stamps its clock just before (a) and just after (b) each of a few tiny
// all-reduces. No rank can finish an all-reduce before every rank has entered it, so for ranks
// r and 0 in the same round, true time A_r <= B_0 and A_0 <= B_r. With clock readings
// a = A + offset, the offset o = clock_r - clock_0 satisfies a_r - b_0 <= o <= b_r - a_0.
// Intersecting the rounds' intervals gives a bound that holds without assuming symmetric
// latency; the estimate is its midpoint and the error bound its half-width (typically tens of
// microseconds over loopback, set by the slowest rank's all-reduce latency). Clocks are assumed
// not to drift during the rounds; over a long run, NTP-disciplined clocks drift apart by up to
// tens of parts per million, which adds to the bound later in the run.
//
// Thread safety: collective; call from the thread that issues collectives.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/communicator.h"

namespace kiln {

struct ClockOffset {
  double offset_us = 0;      // this rank's clock minus rank 0's
  double error_us = 0;       // |true offset - offset_us| <= error_us
  double root_start_us = 0;  // rank 0's clock at the first round: tells runs apart
};

// One round's readings on one rank, in microseconds of its own clock.
struct ClockRound {
  double before_us = 0;
  double after_us = 0;
};

// The bound from matching rounds of this rank and of rank 0 (same length, at least one).
ClockOffset clock_offset_from_rounds(const std::vector<ClockRound>& mine,
                                     const std::vector<ClockRound>& root);

// Runs `rounds` all-reduces and a broadcast of rank 0's readings. Collective.
ClockOffset measure_clock_offset(Communicator& comm, int rounds = 16);

}  // namespace kiln
