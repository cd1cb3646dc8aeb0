// The job thread of the checkpoint writer.
#include "core/checkpoint/background_worker.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/trace.h"

namespace kiln {

BackgroundWorker::BackgroundWorker(std::string name, int nice)
    : name_(std::move(name)), nice_(nice) {
  thread_ = std::thread([this] { loop(); });
}

BackgroundWorker::~BackgroundWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BackgroundWorker::submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
}

void BackgroundWorker::wait_idle() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return queue_.empty() && !running_; });
}

bool BackgroundWorker::idle() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.empty() && !running_;
}

void BackgroundWorker::loop() {
  trace::set_thread_name(name_);
  if (nice_ != 0 &&
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), nice_) != 0) {
    KILN_LOG_DEBUG("ckpt", "{}: cannot set nice {}: {}", name_, nice_, errno_string());
  }
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested and nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
      running_ = true;
    }
    // The thread entry point: nothing may escape it.
    try {
      job();
    } catch (const Error& e) {
      KILN_LOG_ERROR("ckpt", "{}: {}", name_, e.what());
    } catch (const std::exception& e) {
      KILN_LOG_ERROR("ckpt", "{}: unexpected error: {}", name_, e.what());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_ = false;
    }
    cv_.notify_all();
  }
}

}  // namespace kiln
