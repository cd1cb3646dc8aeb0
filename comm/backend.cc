// The backend choice: launcher detection and the factory.
#include "comm/backend.h"

#include <cstdlib>

#include "core/log.h"
#ifdef KILN_WITH_MPI
#include "comm/mpi_communicator.h"
#endif
#ifdef KILN_WITH_NCCL
#include "comm/nccl_communicator.h"
#endif

namespace kiln {

std::string mpi_launcher_variable() {
  // Read directly rather than through core/env: these belong to the launchers, not to Kiln.
  // Open MPI's mpirun, MPICH's hydra and PMIx-based launchers (srun --mpi=pmix) each set one.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    const char* v = std::getenv(name);
    if (v && *v) return fmt::format("{}={}", name, v);
  }
  return "";
}

bool mpi_available() {
#ifdef KILN_WITH_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> make_communicator(const Config& cfg) {
  const std::string& backend = cfg.comm.backend;
  const std::string launcher = mpi_launcher_variable();
  // NCCL is bootstrapped over MPI when an MPI launcher started the job.
  const bool want_mpi = backend == "mpi" || (backend != "mpi" && !launcher.empty());
  if (!want_mpi) {
    KILN_LOG_DEBUG("comm", "no MPI launcher in the environment: a world of one");
    return make_self_communicator();
  }
#ifdef KILN_WITH_MPI
  MpiOptions options;
  options.timeout_s = cfg.comm.timeout_s;
  return make_mpi_communicator(options);
#else
  KILN_FAIL(
      "{} needs MPI{}, but this kiln was built without it (KILN_WITH_MPI off): install "
      "openmpi-bin and libopenmpi-dev (scripts/setup.sh) and rebuild, or run without "
      "mpirun",
      backend == "mpi" ? cfg.where("comm.backend") : std::string("this run"),
      launcher.empty() ? "" : " (started by an MPI launcher: " + launcher + ")");
#endif
}

std::unique_ptr<Communicator> make_device_communicator(const Config& cfg, Communicator& host,
                                                       Device& device) {
  const std::string& backend = cfg.comm.backend;
  if (device.type() == DeviceType::cpu) {
    KILN_CHECK(backend != "nccl", "{} = nccl needs a GPU, but this rank trains on {}; use auto "
               "or mpi", cfg.where("comm.backend"), device.name());
    return nullptr;
  }
  if (backend == "mpi") return nullptr;  // host staging through MPI, as asked
#ifdef KILN_WITH_NCCL
  return make_nccl_communicator(host, device, cfg.comm.timeout_s);
#else
  KILN_FAIL("{} = {} on a GPU needs NCCL, but this kiln was built without it; rebuild with the "
            "CUDA toolkit's NCCL, or set comm.backend: mpi", cfg.where("comm.backend"), backend);
#endif
}

}  // namespace kiln
