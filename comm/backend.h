// Picks the communicator backend at run time from comm.backend (DESIGN decision 4):
//   auto  MPI when the process was started by an MPI launcher (mpirun, srun), else a world of
//         one without touching MPI, so `kiln train` runs as a plain program;
//   mpi   MPI always (a plain start is an MPI singleton, a world of one);
//   nccl  NCCL for device buffers (bootstrapped over MPI or the world of one); needs a GPU.
// On a GPU, auto also reduces device buffers with NCCL (make_device_communicator).
#pragma once

#include <memory>
#include <string>

#include "comm/communicator.h"
#include "core/config.h"
#include "core/device.h"

namespace kiln {

std::unique_ptr<Communicator> make_communicator(const Config& cfg);

// The communicator for device buffers on `device`: NCCL over `host` when the device is a GPU and
// comm.backend is auto or nccl; null when `host` serves (the CPU, or comm.backend: mpi).
std::unique_ptr<Communicator> make_device_communicator(const Config& cfg, Communicator& host,
                                                       Device& device);

// The environment variable an MPI launcher set for this process ("OMPI_COMM_WORLD_SIZE=2"),
// or "" when none did.
std::string mpi_launcher_variable();

// True when this build has the MPI backend (KILN_WITH_MPI).
bool mpi_available();

}  // namespace kiln
