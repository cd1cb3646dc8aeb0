// The collective watchdog: an armed collective past its deadline is reported with its
// description; one disarmed in time is not.
#include "comm/watchdog.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace kiln {
namespace {

TEST(Watchdog, ReportsACollectivePastItsDeadline) {
  std::mutex mu;
  std::string reported;
  double waited = 0;
  std::atomic<bool> fired{false};
  Watchdog dog(0.2, [&](const std::string& what, double s) {
    std::lock_guard<std::mutex> lock(mu);
    reported = what;
    waited = s;
    fired = true;
  });
  dog.arm("all_reduce #3 (gradients, step 5, bucket 1)");
  // Generous: the deadline is 0.2 s; a loaded machine may delay the check, not skip it.
  for (int i = 0; i < 200 && !fired; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fired);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(reported, "all_reduce #3 (gradients, step 5, bucket 1)");
  EXPECT_GE(waited, 0.2);
}

TEST(Watchdog, StaysQuietForCollectivesThatFinish) {
  std::atomic<int> fired{0};
  Watchdog dog(0.3, [&](const std::string&, double) { ++fired; });
  for (int i = 0; i < 5; ++i) {
    dog.arm("barrier");
    dog.disarm();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(fired, 0);
}

}  // namespace
}  // namespace kiln
