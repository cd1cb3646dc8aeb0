// Helpers of the multi-rank tests (tests/mpi): the job's communicator, set up once by
// mpi_test_main.cc, and mismatch counting that every rank agrees on before asserting, so that
// ranks pass or fail together and none is left waiting in a collective (STYLE rule 8).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "comm/communicator.h"

namespace kiln::test {

// The MPI communicator of this test job (every rank of mpirun).
Communicator& job();

// Counts the elements or checks that went wrong on this rank, keeping the first few messages.
class Mismatches {
 public:
  template <typename... Args>
  void add(fmt::format_string<Args...> f, Args&&... args) {
    if (count_++ < 3) first_ += fmt::format(f, std::forward<Args>(args)...) + "; ";
  }
  int64_t local() const { return count_; }
  // Collective: the sum over all ranks.
  int64_t total() const;
  // "rank 1: element 3 is 2 (expected 6); ..." for the failure message.
  std::string report() const;

 private:
  int64_t count_ = 0;
  std::string first_;
};

}  // namespace kiln::test

// Every rank reaches the same verdict: the job-wide count of mismatches must be zero.
#define EXPECT_AGREED_NO_MISMATCH(m) EXPECT_EQ((m).total(), 0) << (m).report()
