// The collective watchdog's thread.
#include "comm/watchdog.h"

#include <algorithm>

namespace kiln {

Watchdog::Watchdog(double timeout_s, Expired on_expire)
    : timeout_s_(timeout_s), on_expire_(std::move(on_expire)) {
  thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::arm(std::string what) {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = true;
  since_ = std::chrono::steady_clock::now();
  what_ = std::move(what);
}

void Watchdog::disarm() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = false;
}

void Watchdog::loop() {
  // Checking a few times per deadline keeps the overshoot small without waking often: the
  // arm/disarm path never signals the thread, so a collective costs two uncontended locks.
  const auto period = std::chrono::duration<double>(std::clamp(timeout_s_ / 8, 0.05, 1.0));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, period);
    if (stop_ || !armed_) continue;
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
    if (waited < timeout_s_) continue;
    const std::string what = what_;
    armed_ = false;
    lock.unlock();
    on_expire_(what, waited);
    lock.lock();
  }
}

}  // namespace kiln
