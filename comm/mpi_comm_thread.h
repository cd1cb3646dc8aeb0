// Internal to the MPI backend: the comm thread that runs one communicator's collectives in issue
// order, under the watchdog, and how it drives MPI. Open MPI makes progress on a collective
// only inside MPI calls and busy-polls while it waits, which on a CPU takes cycles from the
// computation that overlap is meant to hide communication behind. So:
//  - a collective tagged `background` (a gradient bucket issued during backward) is started
//    non-blocking and tested every KILN_MPI_POLL_US, the thread sleeping in between, so that
//    waiting for a slower rank costs no CPU; once a thread blocks in Work::wait() for it, the
//    rest runs hot (MPI_Wait);
//  - any other collective runs as the blocking MPI call (the caller waits for it anyway);
//  - a blocking collective issued while nothing else is queued or running skips the thread
//    altogether: run_here() runs it on the calling thread, in its place in the issue order,
//    under the same watchdog, which saves two thread wake-ups per call.
// The choice follows the tag, never local timing: MPI does not match a blocking collective on
// one rank with a non-blocking one on another.
//
// While the tracer records, each collective leaves a span on the "comm" thread row (running)
// and an async span from enqueue to completion, with its sequence number, step, bucket and
// bytes: the sequence numbers match across ranks, since every rank issues the same collectives
// in the same order.
//
// Thread safety: enqueue from the issuing thread; Work handles are waited on from any thread and
// must not outlive the CommThread.
#pragma once

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "comm/communicator.h"
#include "comm/watchdog.h"

namespace kiln {

class CommThread {
 public:
  CommThread(double timeout_s, Watchdog::Expired on_expire, std::chrono::microseconds poll);
  // Runs what was issued to completion (every rank issued it too), then stops.
  ~CommThread();
  CommThread(const CommThread&) = delete;
  CommThread& operator=(const CommThread&) = delete;

  // Queues `run` (executed on the comm thread; it calls mpi() for each MPI operation).
  // `bytes`: what this rank contributes, for the trace.
  std::unique_ptr<Work> enqueue(const char* op, const CollectiveTag& tag, int64_t bytes,
                                std::function<void()> run);
  // Runs `run` on the calling thread when the comm thread is idle with nothing queued (the
  // collective is next in issue order either way), else queues it as enqueue() does. Either
  // way the caller is expected to wait for the returned Work at once.
  std::unique_ptr<Work> run_here(const char* op, const CollectiveTag& tag, int64_t bytes,
                                 std::function<void()> run);
  // From inside a queued task: one MPI operation given as its blocking call and its
  // non-blocking start, run as described above; returns when it has completed. Throws
  // kiln::Error on an MPI error.
  void mpi(bool background, const std::function<int()>& blocking,
           const std::function<int(MPI_Request*)>& start);

  // Threads blocked in Work::wait() on this thread's collectives.
  struct Waiters {
    std::atomic<int> count{0};
    std::mutex mu;
    std::condition_variable arrived;
  };

 private:
  struct Task;
  void loop();
  // Runs one collective under the watchdog; returns the error ("" when it succeeded).
  std::string run_one(const std::function<void()>& run, const char* op, uint64_t seq,
                      const CollectiveTag& tag, int64_t bytes, int64_t enqueued_ns);

  const std::chrono::microseconds poll_;
  Waiters waiters_;
  std::unique_ptr<Watchdog> watchdog_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Task>> queue_;
  uint64_t next_seq_ = 0;
  bool busy_ = false;  // a collective is running (on the comm thread or in run_here)
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln
