// The MPI communicator: process-wide MPI start/stop, the collectives (run by the comm thread,
// comm/mpi_comm_thread.h), and ending the job.
#include "comm/mpi_communicator.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>

#include "comm/mpi_check.h"
#include "comm/mpi_comm_thread.h"
#include "core/env.h"
#include "core/log.h"

namespace kiln {

namespace {

// MPI_Init_thread once per process; MPI_Finalize when the process exits normally. A function-
// local static, so that it is built after the loggers (and destroyed before them).
class MpiRuntime {
 public:
  static MpiRuntime& get() {
    static MpiRuntime runtime;
    return runtime;
  }
  bool thread_multiple() const { return provided_ >= MPI_THREAD_MULTIPLE; }

 private:
  MpiRuntime() {
    int initialised = 0;
    KILN_MPI_CHECK(MPI_Initialized(&initialised));
    if (initialised) {  // a host program (tests, benchmarks) started MPI itself
      KILN_MPI_CHECK(MPI_Query_thread(&provided_));
    } else {
      prepare_mpi_environment();
      KILN_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided_));
      owned_ = true;
    }
    // The comm thread is the only one calling MPI in steady state, which SERIALIZED allows;
    // MULTIPLE is needed for the watchdog's MPI_Abort while the comm thread is inside MPI.
    KILN_CHECK(provided_ >= MPI_THREAD_SERIALIZED,
               "MPI provides thread level {} but Kiln's comm thread needs MPI_THREAD_SERIALIZED "
               "({}) or better: use an MPI built with thread support (Debian's openmpi-bin is)",
               provided_, MPI_THREAD_SERIALIZED);
    if (!thread_multiple()) {
      KILN_LOG_WARN("comm",
                    "MPI provides thread level {} (< MPI_THREAD_MULTIPLE): the watchdog "
                    "will end the job with _exit instead of MPI_Abort",
                    provided_);
    }
    create_mpi_half_ops();
  }
  ~MpiRuntime() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;  // a host program that started MPI has already ended it
    free_mpi_half_ops();
    if (owned_) MPI_Finalize();
  }

  int provided_ = 0;
  bool owned_ = false;
};

// MPI counts are ints: larger buffers go in pieces of at most this many elements.
constexpr int64_t kMaxCount = INT_MAX / 2;

int as_count(int64_t n, const char* op) {
  KILN_CHECK(n <= INT_MAX,
             "{} of {} elements per rank exceeds MPI's int count limit ({}): "
             "split the tensor",
             op, n, INT_MAX);
  return static_cast<int>(n);
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const MpiOptions& options)
      : runtime_(MpiRuntime::get()),
        chunk_bytes_(options.chunk_bytes > 0 ? options.chunk_bytes
                                             : env::get_int("KILN_MPI_CHUNK_BYTES")) {
    KILN_CHECK(chunk_bytes_ > 0, "KILN_MPI_CHUNK_BYTES is {}: give a positive byte count",
               chunk_bytes_);
    KILN_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
    // Errors come back as codes, which KILN_MPI_CHECK turns into a kiln::Error on the Work.
    KILN_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    KILN_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    KILN_MPI_CHECK(MPI_Comm_size(comm_, &world_));
    MPI_Comm node = MPI_COMM_NULL;
    KILN_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
    KILN_MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
    KILN_MPI_CHECK(MPI_Comm_size(node, &local_world_));
    KILN_MPI_CHECK(MPI_Comm_free(&node));
    const auto poll =
        std::chrono::microseconds(std::max<int64_t>(1, env::get_int("KILN_MPI_POLL_US")));
    thread_ = std::make_unique<CommThread>(
        options.timeout_s,
        [this, timeout = options.timeout_s](const std::string& what, double waited) {
          KILN_LOG_ERROR("comm",
                         "watchdog: {} has not finished after {:.1f} s (comm.timeout_s "
                         "= {}): another rank is stuck or gone. Ending the job. Look for the "
                         "rank that stopped logging, or raise comm.timeout_s if it is just slow",
                         what, waited, timeout);
          abort(kWatchdogExitCode);
        },
        poll);
  }

  ~MpiCommunicator() override {
    thread_.reset();  // runs what was issued first: every rank issued it too
    if (MPI_Comm_free(&comm_) != MPI_SUCCESS) {
      KILN_LOG_WARN("comm", "MPI_Comm_free failed while closing the communicator");
    }
  }

  std::string backend() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  int local_rank() const override { return local_rank_; }
  int local_world() const override { return local_world_; }

  std::unique_ptr<Work> all_reduce_async(Tensor& t, ReduceOp op,
                                         const CollectiveTag& tag) override {
    check_host(t, "all_reduce");
    void* data = t.raw();
    const int64_t n = t.numel();
    const size_t elem = dtype_size(t.dtype());
    const MPI_Datatype type = mpi_datatype(t.dtype());
    const MPI_Op mop = mpi_op(op, t.dtype());
    // In pieces of chunk_bytes: one MPI call over a very large buffer is much slower in Open MPI
    // 4.1 (from 32 MiB up, about 10x on a 2-core host; scripts/bench/allreduce shows it).
    const int64_t chunk =
        std::clamp<int64_t>(chunk_bytes_ / static_cast<int64_t>(elem), 1, kMaxCount);
    return submit("all_reduce", tag, n * static_cast<int64_t>(elem), [=, this] {
      // Every rank holds the same element count, so an empty tensor skips MPI on all of them.
      for (int64_t done = 0; done < n;) {
        void* p = static_cast<char*>(data) + done * elem;
        const int count = static_cast<int>(std::min(n - done, chunk));
        thread_->mpi(
            tag.background, [&] { return MPI_Allreduce(MPI_IN_PLACE, p, count, type, mop, comm_); },
            [&](MPI_Request* r) {
              return MPI_Iallreduce(MPI_IN_PLACE, p, count, type, mop, comm_, r);
            });
        done += count;
      }
    });
  }

  std::unique_ptr<Work> reduce_scatter_async(const Tensor& in, Tensor& out, ReduceOp op,
                                             const CollectiveTag& tag) override {
    check_host(in, "reduce_scatter");
    check_host(out, "reduce_scatter");
    KILN_CHECK(in.dtype() == out.dtype(), "reduce_scatter from {} into {}: dtypes differ",
               dtype_name(in.dtype()), dtype_name(out.dtype()));
    KILN_CHECK(in.numel() == out.numel() * world_,
               "reduce_scatter over {} ranks needs in = world x out elements; got in {} and "
               "out {}",
               world_, in.numel(), out.numel());
    const void* src = in.raw();
    void* dst = out.raw();
    const int count = as_count(out.numel(), "reduce_scatter");
    const MPI_Datatype type = mpi_datatype(in.dtype());
    const MPI_Op mop = mpi_op(op, in.dtype());
    return submit("reduce_scatter", tag, static_cast<int64_t>(in.nbytes()), [=, this] {
      thread_->mpi(
          tag.background,
          [&] { return MPI_Reduce_scatter_block(src, dst, count, type, mop, comm_); },
          [&](MPI_Request* r) {
            return MPI_Ireduce_scatter_block(src, dst, count, type, mop, comm_, r);
          });
    });
  }

  std::unique_ptr<Work> all_gather_async(const Tensor& in, Tensor& out,
                                         const CollectiveTag& tag) override {
    check_host(in, "all_gather");
    check_host(out, "all_gather");
    KILN_CHECK(in.dtype() == out.dtype(), "all_gather from {} into {}: dtypes differ",
               dtype_name(in.dtype()), dtype_name(out.dtype()));
    KILN_CHECK(out.numel() == in.numel() * world_,
               "all_gather over {} ranks needs out = world x in elements; got in {} and out {}",
               world_, in.numel(), out.numel());
    const void* src = in.raw();
    void* dst = out.raw();
    const int count = as_count(in.numel(), "all_gather");
    const MPI_Datatype type = mpi_datatype(in.dtype());
    return submit("all_gather", tag, static_cast<int64_t>(in.nbytes()), [=, this] {
      thread_->mpi(
          tag.background, [&] { return MPI_Allgather(src, count, type, dst, count, type, comm_); },
          [&](MPI_Request* r) {
            return MPI_Iallgather(src, count, type, dst, count, type, comm_, r);
          });
    });
  }

  std::unique_ptr<Work> broadcast_async(Tensor& t, int root, const CollectiveTag& tag) override {
    check_host(t, "broadcast");
    KILN_CHECK(root >= 0 && root < world_, "broadcast from rank {} in a world of {}", root, world_);
    void* data = t.raw();
    const int64_t n = t.numel();
    const size_t elem = dtype_size(t.dtype());
    const MPI_Datatype type = mpi_datatype(t.dtype());
    return submit("broadcast", tag, n * static_cast<int64_t>(elem), [=, this] {
      for (int64_t done = 0; done < n;) {
        void* p = static_cast<char*>(data) + done * elem;
        const int count = static_cast<int>(std::min(n - done, kMaxCount));
        thread_->mpi(
            tag.background, [&] { return MPI_Bcast(p, count, type, root, comm_); },
            [&](MPI_Request* r) { return MPI_Ibcast(p, count, type, root, comm_, r); });
        done += count;
      }
    });
  }

  std::unique_ptr<Work> barrier_async(const CollectiveTag& tag) override {
    return submit("barrier", tag, 0, [=, this] {
      thread_->mpi(
          tag.background, [&] { return MPI_Barrier(comm_); },
          [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
    });
  }

  void set_caller_waits(bool waits) override { caller_waits_ = waits; }

  [[noreturn]] void abort(int exit_code) noexcept override {
    std::fflush(nullptr);
    if (runtime_.thread_multiple()) MPI_Abort(MPI_COMM_WORLD, exit_code);
    // Without thread support MPI_Abort may not be called beside a blocked MPI call; mpirun
    // still ends the other ranks once it sees this one exit non-zero without MPI_Finalize.
    std::_Exit(exit_code);
  }

 private:
  // A collective the caller waits for at once runs on the caller's thread when the comm thread
  // is idle; background ones stay with the comm thread, whose polling spares the CPU.
  std::unique_ptr<Work> submit(const char* op, const CollectiveTag& tag, int64_t bytes,
                               std::function<void()> run) {
    if (caller_waits_ && !tag.background) return thread_->run_here(op, tag, bytes, std::move(run));
    return thread_->enqueue(op, tag, bytes, std::move(run));
  }

  void check_host(const Tensor& t, const char* op) const {
    KILN_CHECK(t.defined(), "{} of an undefined tensor", op);
    KILN_CHECK(t.is_cpu(),
               "{} of a tensor on {}: the mpi backend works on host buffers; use "
               "comm.backend nccl for device buffers",
               op, t.device().name());
  }

  MpiRuntime& runtime_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, world_ = 1, local_rank_ = 0, local_world_ = 1;
  int64_t chunk_bytes_;
  bool caller_waits_ = false;  // set by the issuing thread only
  std::unique_ptr<CommThread> thread_;
};

}  // namespace

void prepare_mpi_environment() {
  // Gradient buckets are MPI_Iallreduce calls progressed by polling. Open MPI's default choice
  // for them (libnbc) ran 1.3-2x slower than the blocking all-reduce from 1 MiB up here (2 and
  // 4 ranks); its ring matches the blocking call at those sizes and was the fastest of its
  // algorithms from 64 KiB up. A ring takes 2(n-1) rounds, and while backward runs each round
  // may wait up to a poll period, so from 9 ranks up Rabenseifner's reduce-scatter +
  // all-gather (2 log2 n rounds) takes over; a reasoned choice, not measured here. Both leave
  // every rank with the same bits. The user's own setting wins; other MPIs ignore it.
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");  // set by Open MPI's launcher
  const int world = size ? std::atoi(size) : 1;
  ::setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", world <= 8 ? "1" : "3", 0);
}

std::unique_ptr<Communicator> make_mpi_communicator(const MpiOptions& options) {
  return std::make_unique<MpiCommunicator>(options);
}

}  // namespace kiln
