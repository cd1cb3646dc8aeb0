// The collective watchdog (DESIGN decision 7): a thread that watches the one collective a
// backend is running and, when it has not finished within the deadline, hands its description
// and the time waited to `on_expire` (which logs and ends the job; it is not expected to
// return). Backend-neutral: the MPI backend arms it around each call; NCCL can do the same.
//
// Thread safety: arm/disarm from the thread running the collectives; the callback runs on the
// watchdog's own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace kiln {

class Watchdog {
 public:
  using Expired = std::function<void(const std::string& what, double waited_s)>;
  Watchdog(double timeout_s, Expired on_expire);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // A collective described by `what` starts now / has finished.
  void arm(std::string what);
  void disarm();
  double timeout_s() const { return timeout_s_; }

 private:
  void loop();

  const double timeout_s_;
  Expired on_expire_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool stop_ = false;
  std::chrono::steady_clock::time_point since_;
  std::string what_;
  std::thread thread_;
};

}  // namespace kiln
