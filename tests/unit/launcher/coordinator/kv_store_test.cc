// The key-value store's waiting reads: answered by a publish, at the deadline, or at shutdown.
#include "launcher/coordinator/kv_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include <fmt/format.h>

namespace kiln::coord {
namespace {

using grpc::StatusCode;

struct Answer {
  std::promise<std::pair<StatusCode, std::string>> promise;
  KvStore::Answer fn() {
    return [this](const grpc::Status& s, const KvStore::Entry* e) {
      promise.set_value({s.error_code(), e ? e->value : std::string()});
    };
  }
};

TEST(KvStore, WaitingReadIsAnsweredByPublish) {
  KvStore kv;
  Answer a;
  auto f = a.promise.get_future();
  kv.wait("j", "nccl-id", KvStore::Clock::now() + std::chrono::seconds(60), a.fn());
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  kv.publish("j", "other", "x", kv.next_version());
  kv.publish("k", "nccl-id", "x", kv.next_version());  // another job's key
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  kv.publish("j", "nccl-id", "abc", kv.next_version());
  auto [code, value] = f.get();
  EXPECT_EQ(code, StatusCode::OK);
  EXPECT_EQ(value, "abc");
  EXPECT_EQ(kv.get("j", "nccl-id")->version, 3u);
}

TEST(KvStore, PresentKeyAnswersAtOnceAndMissingOneTimesOut) {
  KvStore kv;
  kv.restore({KvRow{"j", "k", "v", 41}});
  EXPECT_EQ(kv.next_version(), 42u);
  Answer now;
  kv.wait("j", "k", KvStore::Clock::now(), now.fn());
  EXPECT_EQ(now.promise.get_future().get().second, "v");
  Answer late;
  auto f = late.promise.get_future();
  kv.wait("j", "missing", KvStore::Clock::now() + std::chrono::milliseconds(20), late.fn());
  EXPECT_EQ(f.get().first, StatusCode::DEADLINE_EXCEEDED);
}

TEST(KvStore, ShutdownAnswersWaitersAndRoomIsBounded) {
  Answer a;
  auto f = a.promise.get_future();
  {
    KvStore kv;
    kv.wait("j", "k", KvStore::Clock::now() + std::chrono::hours(1), a.fn());
    for (size_t i = 0; i < KvStore::kMaxKeysPerJob; ++i) {
      kv.publish("full", fmt::format("k{}", i), "v", kv.next_version());
    }
    EXPECT_FALSE(kv.has_room("full", "new"));
    EXPECT_TRUE(kv.has_room("full", "k0"));
    EXPECT_TRUE(kv.has_room("j", "new"));
  }
  EXPECT_EQ(f.get().first, StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace kiln::coord
