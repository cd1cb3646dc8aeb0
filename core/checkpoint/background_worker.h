// One background thread that runs jobs in the order they were submitted: the checkpoint writer
// (snapshot copies, file writes, commits) runs on it so that the training loop only hands work
// over and, at the next save, waits for the previous one.
//
// Thread safety: submit/wait_idle/idle may be called from any thread. A job that throws is
// logged; jobs that must report failure do so through their own state.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace kiln {

class BackgroundWorker {
 public:
  // `nice` > 0 lowers the thread's CPU priority (Linux per-thread nice), so that work which is
  // not urgent yields the cores to the training threads.
  explicit BackgroundWorker(std::string name, int nice = 0);
  // Runs what is queued, then joins.
  ~BackgroundWorker();
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

  void submit(std::function<void()> job);
  // Blocks until every job submitted before the call has finished.
  void wait_idle();
  // True when no job is queued or running.
  bool idle();

 private:
  void loop();

  std::string name_;
  int nice_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool running_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln
