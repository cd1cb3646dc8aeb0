// Benchmark of the Communicator's all-reduce (MPI backend) against raw MPI_Allreduce called
// directly, on the same buffer, in the same process, in interleaved rounds so that all sides see
// the same machine. Kiln's blocking all-reduce runs on the calling thread when its comm thread
// is idle and goes to MPI in pieces of KILN_MPI_CHUNK_BYTES (8 MiB). A third side is the
// background form that gradient buckets use (MPI_Iallreduce on the comm thread, polled). Run by
// scripts/bench/allreduce under mpirun; prints one table row per size and a `summary:` line that
// the script collects.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "comm/mpi_communicator.h"
#include "core/log.h"

namespace {

using Clock = std::chrono::steady_clock;

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// The slowest rank's time: a collective is done when every rank is done.
double slowest(double t) {
  MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return t;
}

// The best round: on a shared machine other processes only ever add time, so the fastest of
// several interleaved rounds is the steadiest estimate of what each side can do.
double best(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

std::string algorithm_name() {
  // Open MPI's tuned component picks by size unless an algorithm is forced through MCA.
  const char* forced = std::getenv("OMPI_MCA_coll_tuned_allreduce_algorithm");
  const char* dynamic = std::getenv("OMPI_MCA_coll_tuned_use_dynamic_rules");
  if (forced && dynamic && std::string(dynamic) == "1") {
    static const char* names[] = {
        "default", "basic linear",   "nonoverlapping", "recursive doubling",
        "ring",    "segmented ring", "rabenseifner"};
    const int i = std::atoi(forced);
    return i >= 0 && i <= 6 ? names[i] : forced;
  }
  return "library default (size-based choice)";
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  kiln::prepare_mpi_environment();  // what kiln train's ranks get (raw MPI_Allreduce unaffected)
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  kiln::log::init();
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const int64_t max_bytes = argc > 1 ? std::atoll(argv[1]) : (256ll << 20);
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  {
    kiln::MpiOptions options;
    options.timeout_s = 600;
    std::unique_ptr<kiln::Communicator> comm = kiln::make_mpi_communicator(options);
    if (rank == 0) {
      char version[MPI_MAX_LIBRARY_VERSION_STRING];
      int len = 0;
      MPI_Get_library_version(version, &len);
      std::string v(version, static_cast<size_t>(len));
      v = v.substr(0, v.find_first_of(",\n"));
      std::printf("all-reduce, f32 sum, %d ranks, %s, algorithm: %s (both sides)\n", world,
                  v.c_str(), algorithm_name().c_str());
      std::printf("%10s %6s %9s %14s %9s %14s %7s %9s %14s %7s\n", "bytes", "iters", "raw us",
                  "raw busbw", "kiln us", "kiln busbw", "ratio", "bg us", "bg busbw", "ratio");
    }
    // Check once that both paths compute the sum: rank r contributes r + 1.
    {
      kiln::Tensor t = kiln::Tensor::empty(kiln::Shape{1001}, kiln::DType::f32, kiln::cpu_device());
      std::fill(t.data<float>(), t.data<float>() + 1001, static_cast<float>(rank + 1));
      comm->all_reduce(t, kiln::ReduceOp::sum);
      MPI_Allreduce(MPI_IN_PLACE, t.data<float>(), 1001, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      const float want = static_cast<float>(world) * world * (world + 1) / 2;
      int bad = t.data<float>()[1000] != want;
      MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
      if (bad) {
        if (rank == 0) std::fprintf(stderr, "wrong all-reduce result\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
    const double bus_factor = 2.0 * (world - 1) / world;
    double min_ratio_1m = 1e9, log_sum = 0, min_bg_1m = 1e9;
    int count_1m = 0;
    for (int64_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
      const int64_t n = bytes / 4;
      // Zeros stay zeros however often they are summed: no overflow, no denormals.
      kiln::Tensor t = kiln::Tensor::zeros(kiln::Shape{n}, kiln::DType::f32, kiln::cpu_device());
      float* p = t.data<float>();
      auto raw = [&] {
        MPI_Allreduce(MPI_IN_PLACE, p, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      };
      auto kiln_call = [&] { comm->all_reduce(t, kiln::ReduceOp::sum); };
      const kiln::CollectiveTag background{"bench", -1, -1, true};
      auto bg_call = [&] { comm->all_reduce(t, kiln::ReduceOp::sum, background); };
      // Warm up both, then size each timed block to about 50 ms (the same on every rank).
      raw();
      kiln_call();
      bg_call();
      double once = 1e9;
      for (int i = 0; i < 3; ++i) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = now_s();
        raw();
        once = std::min(once, slowest(now_s() - t0));
      }
      const int iters = static_cast<int>(std::clamp(0.05 / std::max(once, 1e-7), 1.0, 2000.0));
      std::vector<double> times[3];  // raw, kiln, kiln background
      for (int r = 0; r < rounds; ++r) {
        for (int side = 0; side < 3; ++side) {
          MPI_Barrier(MPI_COMM_WORLD);
          const double t0 = now_s();
          for (int i = 0; i < iters; ++i) side == 0 ? raw() : side == 1 ? kiln_call() : bg_call();
          times[side].push_back(slowest(now_s() - t0) / iters);
        }
      }
      const double tr = best(times[0]), tk = best(times[1]), tb = best(times[2]);
      const double ratio = tr / tk, ratio_bg = tr / tb;  // > 1: Kiln faster
      if (bytes >= (1 << 20)) {
        min_ratio_1m = std::min(min_ratio_1m, ratio);
        min_bg_1m = std::min(min_bg_1m, ratio_bg);
        log_sum += std::log(ratio);
        ++count_1m;
      }
      if (rank == 0) {
        auto busbw = [&](double t) { return bytes / t * bus_factor / 1e9; };
        std::printf("%10lld %6d %9.1f %9.2f GB/s %9.1f %9.2f GB/s %7.3f %9.1f %9.2f GB/s %7.3f\n",
                    static_cast<long long>(bytes), iters, tr * 1e6, busbw(tr), tk * 1e6, busbw(tk),
                    ratio, tb * 1e6, busbw(tb), ratio_bg);
        std::fflush(stdout);
      }
    }
    if (rank == 0) {
      std::printf(
          "summary: np=%d min_ratio_from_1MiB=%.3f geomean_ratio_from_1MiB=%.3f "
          "min_background_ratio_from_1MiB=%.3f\n",
          world, count_1m ? min_ratio_1m : 0.0, count_1m ? std::exp(log_sum / count_1m) : 0.0,
          count_1m ? min_bg_1m : 0.0);
    }
  }
  MPI_Finalize();
  return 0;
}
