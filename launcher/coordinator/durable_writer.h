// Group commit for the coordinator: requests that change durable state are queued, and one
// thread runs whatever has gathered inside a single SQLite transaction, commits it (one fsync
// for the whole group), and only then hands each request its status, so that a reply never
// acknowledges something that is not on disk. A failed commit or a failed write ends the
// process: memory would no longer match the database, and a restart reloads the database.
// Thread-safe: submit() from any thread; ops and completions run on the writer's thread.
#pragma once

#include <grpcpp/support/status.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "launcher/coordinator/store.h"

namespace kiln::coord {

class DurableWriter {
 public:
  using Op = std::function<grpc::Status(Store&)>;
  using Done = std::function<void(const grpc::Status&)>;

  explicit DurableWriter(Store& store, size_t max_queue = 100000);
  ~DurableWriter();  // stop()
  DurableWriter(const DurableWriter&) = delete;
  DurableWriter& operator=(const DurableWriter&) = delete;

  // Queues `op`; `done` receives its status after the commit. A full queue answers
  // RESOURCE_EXHAUSTED at once, a stopped writer UNAVAILABLE.
  void submit(Op op, Done done);
  // Runs what is queued, then ends the thread.
  void stop();

  uint64_t commits() const { return commits_.load(); }
  uint64_t ops() const { return ops_.load(); }

 private:
  struct Item {
    Op op;
    Done done;
  };
  void run();

  Store& store_;
  const size_t max_queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::atomic<uint64_t> commits_{0}, ops_{0};
  std::thread thread_;
};

}  // namespace kiln::coord
