// The NCCL backend (DESIGN decision 4): collectives over device buffers, bootstrapped over
// another communicator (MPI, or the world of one): rank 0 makes the ncclUniqueId and the
// bootstrap broadcasts it. Collectives run in issue order on a dedicated comm stream; each waits
// for an event recorded on the compute stream when it was issued, and Work::wait() makes the
// compute stream wait for its completion event, so every cross-stream use is ordered by an
// event and the host is not blocked. Host tensors (control values, metrics) go to the bootstrap.
// A watchdog thread polls completion events and ncclCommGetAsyncError; past comm.timeout_s it
// logs the collective, calls ncclCommAbort and ends the job (DESIGN decision 7).
#pragma once

#include <memory>

#include "comm/communicator.h"
#include "core/device.h"

namespace kiln {

// `bootstrap` outlives the result; `device` is the CUDA device of this rank.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, Device& device,
                                                     double timeout_s);

}  // namespace kiln
