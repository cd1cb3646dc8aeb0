// The per-job key-value store (rendezvous data such as an ncclUniqueId), with reads that wait
// for a key to appear. Values are durable (written by the durable writer before publish());
// waiting reads hold no thread: each is a callback answered exactly once, when the key is
// published, at its deadline, or at shutdown. Thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "launcher/coordinator/state.h"

namespace kiln::coord {

class KvStore {
 public:
  struct Entry {
    std::string value;
    uint64_t version = 0;
  };
  using Clock = std::chrono::steady_clock;
  // Called once with OK and the entry, or with an error status and nullptr.
  using Answer = std::function<void(const grpc::Status&, const Entry*)>;

  static constexpr size_t kMaxKeysPerJob = 4096;
  static constexpr size_t kMaxWaiters = 65536;

  KvStore();
  ~KvStore();  // shutdown()
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  void restore(const std::vector<KvRow>& rows);
  // A version for a new write, larger than any before (also across restarts).
  uint64_t next_version();
  // False when the job already holds kMaxKeysPerJob keys and `key` is not one of them.
  bool has_room(const std::string& job, const std::string& key) const;
  // Makes a committed write visible and answers the reads waiting for it.
  void publish(const std::string& job, const std::string& key, std::string value, uint64_t version);
  std::optional<Entry> get(const std::string& job, const std::string& key) const;
  // Answers at once when the key exists, else when it is published or `deadline` passes
  // (DEADLINE_EXCEEDED). Too many waiting reads: RESOURCE_EXHAUSTED.
  void wait(const std::string& job, const std::string& key, Clock::time_point deadline,
            Answer answer);
  // Answers every waiting read with UNAVAILABLE and stops the timer thread.
  void shutdown();

 private:
  struct Waiter {
    uint64_t id;
    Clock::time_point deadline;
    Answer answer;
  };
  using Key = std::pair<std::string, std::string>;
  void expire_loop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, Entry> entries_;
  std::map<std::string, size_t> keys_per_job_;
  std::map<Key, std::vector<Waiter>> waiters_;
  std::multimap<Clock::time_point, std::pair<Key, uint64_t>> deadlines_;
  size_t waiting_ = 0;
  uint64_t next_waiter_ = 1;
  uint64_t version_ = 0;
  bool stopped_ = false;
  std::thread timer_;
};

}  // namespace kiln::coord
