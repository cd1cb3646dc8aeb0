// main() of the multi-rank GoogleTest binaries: starts the MPI communicator, runs the tests on
// every rank, and prints progress from rank 0 only (other ranks print just their failures).
#include <cstdio>

#include "comm/backend.h"
#include "comm/mpi_communicator.h"
#include "core/device.h"
#include "core/error.h"
#include "core/log.h"
#include "mpi_test.h"

namespace kiln::test {

namespace {

std::unique_ptr<Communicator> g_job;

// On ranks other than 0: failures only, each marked with the rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_,
                 r.file_name() ? r.file_name() : "?", r.line_number(), r.summary());
  }

 private:
  int rank_;
};

}  // namespace

Communicator& job() { return *g_job; }

int64_t Mismatches::total() const {
  Tensor t = Tensor::from_vector(std::vector<double>{static_cast<double>(count_)}, Shape{1});
  job().all_reduce(t, ReduceOp::sum, CollectiveTag{"test verdict"});
  return static_cast<int64_t>(t.data<double>()[0]);
}

std::string Mismatches::report() const {
  return count_ == 0 ? std::string("(none on this rank)")
                     : fmt::format("rank {}: {} mismatches: {}", job().rank(), count_, first_);
}

}  // namespace kiln::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  kiln::log::init();
  int result = 1;
  try {
    kiln::MpiOptions options;
    options.timeout_s = 120;  // a hung test ends the job instead of the ctest timeout
    kiln::test::g_job = kiln::make_mpi_communicator(options);
    kiln::Communicator& job = kiln::test::job();
    kiln::ProcessContext& ctx = kiln::process_context();
    ctx.rank = job.rank();
    ctx.world = job.world();
    ctx.local_rank = job.local_rank();
    kiln::log::refresh_prefix();
    kiln::set_cpu_threads(kiln::default_cpu_threads(job.local_world()));
    if (job.rank() != 0) {
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());
      listeners.Append(new kiln::test::FailurePrinter(job.rank()));
    }
    result = RUN_ALL_TESTS();
    job.barrier();
    kiln::test::g_job.reset();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi test main: %s\n", e.what());
    if (kiln::test::g_job) kiln::test::g_job->abort(1);
    return 1;
  }
  return result;
}
