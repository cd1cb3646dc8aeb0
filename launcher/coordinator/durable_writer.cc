// The coordinator's single writer thread: batches of requests, one transaction each.
#include "launcher/coordinator/durable_writer.h"

#include <cstdlib>
#include <vector>

#include "core/log.h"

namespace kiln::coord {

namespace {

// Exit code when durable state can no longer be trusted in memory (EX_SOFTWARE).
constexpr int kExitInconsistent = 70;
constexpr size_t kMaxBatch = 4096;

[[noreturn]] void die(const char* what, const char* detail) {
  KILN_LOG_ERROR("coord",
                 "{}: {}; the coordinator exits so that a restart reloads the state "
                 "database (acknowledged requests are all in it)",
                 what, detail);
  spdlog::shutdown();
  std::_Exit(kExitInconsistent);
}

}  // namespace

DurableWriter::DurableWriter(Store& store, size_t max_queue)
    : store_(store), max_queue_(max_queue), thread_([this] { run(); }) {}

DurableWriter::~DurableWriter() { stop(); }

void DurableWriter::submit(Op op, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && queue_.size() < max_queue_) {
      queue_.push_back(Item{std::move(op), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  const bool stopped = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }();
  done(stopped ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down")
               : grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              "the coordinator's write queue is full; retry later"));
}

void DurableWriter::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void DurableWriter::run() {
  std::vector<Item> batch;
  std::vector<grpc::Status> results;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has been answered
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    results.clear();
    try {
      store_.begin();
      for (Item& item : batch) results.push_back(item.op(store_));
      store_.commit();
    } catch (const std::exception& e) {
      die("a durable write failed", e.what());
    }
    commits_.fetch_add(1);
    ops_.fetch_add(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(results[i]);
    batch.clear();
  }
}

}  // namespace kiln::coord
