// The coordinator's key-value store and its waiting reads.
#include "launcher/coordinator/kv_store.h"

namespace kiln::coord {

KvStore::KvStore() : timer_([this] { expire_loop(); }) {}

KvStore::~KvStore() { shutdown(); }

void KvStore::restore(const std::vector<KvRow>& rows) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const KvRow& r : rows) {
    if (entries_.emplace(Key{r.job, r.key}, Entry{r.value, r.version}).second) {
      ++keys_per_job_[r.job];
    }
    version_ = std::max(version_, r.version);
  }
}

uint64_t KvStore::next_version() {
  std::lock_guard<std::mutex> lock(mu_);
  return ++version_;
}

bool KvStore::has_room(const std::string& job, const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.count(Key{job, key})) return true;
  auto it = keys_per_job_.find(job);
  return it == keys_per_job_.end() || it->second < kMaxKeysPerJob;
}

void KvStore::publish(const std::string& job, const std::string& key, std::string value,
                      uint64_t version) {
  std::vector<Waiter> woken;
  Entry entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Key k{job, key};
    auto [it, added] = entries_.insert_or_assign(k, Entry{std::move(value), version});
    if (added) ++keys_per_job_[job];
    entry = it->second;
    auto w = waiters_.find(k);
    if (w != waiters_.end()) {
      woken = std::move(w->second);
      waiters_.erase(w);
      waiting_ -= woken.size();
      for (const Waiter& x : woken) {
        auto range = deadlines_.equal_range(x.deadline);
        for (auto d = range.first; d != range.second; ++d) {
          if (d->second.second == x.id) {
            deadlines_.erase(d);
            break;
          }
        }
      }
    }
  }
  for (Waiter& x : woken) x.answer(grpc::Status::OK, &entry);
}

std::optional<KvStore::Entry> KvStore::get(const std::string& job, const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(Key{job, key});
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void KvStore::wait(const std::string& job, const std::string& key, Clock::time_point deadline,
                   Answer answer) {
  std::optional<Entry> found;
  grpc::Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Key k{job, key};
    auto it = entries_.find(k);
    if (it != entries_.end()) {
      found = it->second;
    } else if (stopped_) {
      refused = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down");
    } else if (waiting_ >= kMaxWaiters) {
      refused = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                             "too many reads are waiting for keys; retry later");
    } else {
      const uint64_t id = next_waiter_++;
      waiters_[k].push_back(Waiter{id, deadline, std::move(answer)});
      deadlines_.emplace(deadline, std::make_pair(k, id));
      ++waiting_;
      cv_.notify_one();
      return;
    }
  }
  if (found) {
    answer(grpc::Status::OK, &*found);
  } else {
    answer(refused, nullptr);
  }
}

void KvStore::expire_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopped_) {
    if (deadlines_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const Clock::time_point next = deadlines_.begin()->first;
    if (Clock::now() < next) {
      cv_.wait_until(lock, next);
      continue;
    }
    std::vector<Answer> expired;
    while (!deadlines_.empty() && deadlines_.begin()->first <= Clock::now()) {
      auto [key, id] = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      auto w = waiters_.find(key);
      if (w == waiters_.end()) continue;
      auto& list = w->second;
      for (size_t i = 0; i < list.size(); ++i) {
        if (list[i].id == id) {
          expired.push_back(std::move(list[i].answer));
          list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
          --waiting_;
          break;
        }
      }
      if (list.empty()) waiters_.erase(w);
    }
    lock.unlock();
    const grpc::Status late(grpc::StatusCode::DEADLINE_EXCEEDED,
                            "the key did not appear within wait_ms");
    for (Answer& a : expired) a(late, nullptr);
    lock.lock();
  }
}

void KvStore::shutdown() {
  std::map<Key, std::vector<Waiter>> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ && !timer_.joinable()) return;
    stopped_ = true;
    pending = std::move(waiters_);
    waiters_.clear();
    deadlines_.clear();
    waiting_ = 0;
    cv_.notify_all();
  }
  if (timer_.joinable()) timer_.join();
  const grpc::Status gone(grpc::StatusCode::UNAVAILABLE, "the coordinator is shutting down");
  for (auto& [key, list] : pending) {
    for (Waiter& w : list) w.answer(gone, nullptr);
  }
}

}  // namespace kiln::coord
