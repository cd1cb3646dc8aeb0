// The MPI backend of the Communicator interface (DESIGN decision 4), over host buffers. Built
// into kiln_comm_mpi only when KILN_WITH_MPI is on; callers reach it through
// make_communicator (comm/backend.h) and never include <mpi.h>.
//
// MPI is initialised on first use with MPI_THREAD_MULTIPLE and finalised at process exit.
// Each communicator works on its own duplicate of MPI_COMM_WORLD and owns a comm thread that
// runs the collectives in issue order (comm/mpi_comm_thread.h): Open MPI only progresses a
// collective inside MPI calls, so a thread of its own is what lets a bucket's reduction advance
// while backward computes. A watchdog ends the whole job with MPI_Abort (exit status
// kWatchdogExitCode) when a collective overruns `timeout_s`.
#pragma once

#include <memory>

#include "comm/communicator.h"

namespace kiln {

constexpr int kWatchdogExitCode = 3;

struct MpiOptions {
  double timeout_s = 300;  // comm.timeout_s: the deadline of every collective
  // An all-reduce goes to MPI in pieces of at most this many bytes; 0: KILN_MPI_CHUNK_BYTES.
  int64_t chunk_bytes = 0;
};

std::unique_ptr<Communicator> make_mpi_communicator(const MpiOptions& options);

// Kiln's defaults for the MPI library, as environment variables that the user's own values
// override; read by MPI_Init. Called by Kiln before it initialises MPI itself; a program that
// calls MPI_Init on its own (benchmarks) calls this first to get the same behaviour.
void prepare_mpi_environment();

}  // namespace kiln
