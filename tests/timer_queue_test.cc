// TimerQueue: callbacks run once, in time order, on its thread; Cancel says
// whether a callback will never run.

#include "rpc/timer_queue.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace filemesh::internal {
namespace {

// What the callbacks did, and a way to wait for a count of them.
class Record {
 public:
  std::function<void()> Note(int value) {
    return [this, value] {
      std::lock_guard<std::mutex> lock(mu_);
      values_.push_back(value);
      cv_.notify_all();
    };
  }
  std::vector<int> Values() {
    std::lock_guard<std::mutex> lock(mu_);
    return values_;
  }
  // The values once `count` have run (or what ran within 10 s: a failure).
  std::vector<int> WaitFor(size_t count) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return values_.size() >= count; });
    return values_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> values_;
};

TEST(TimerQueueTest, CallbacksRunOnceInTimeOrder) {
  TimerQueue timers;
  Record record;
  const absl::Time now = absl::Now();
  timers.Schedule(now + absl::Milliseconds(60), record.Note(3));
  timers.Schedule(now + absl::Milliseconds(20), record.Note(1));
  timers.Schedule(now + absl::Milliseconds(40), record.Note(2));
  timers.Schedule(now - absl::Seconds(1), record.Note(0));  // past: at once
  EXPECT_EQ(record.WaitFor(4), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(timers.pending(), 0u);
}

TEST(TimerQueueTest, ACancelledCallbackNeverRuns) {
  TimerQueue timers;
  Record record;
  const absl::Time now = absl::Now();
  const uint64_t cancelled = timers.Schedule(now + absl::Milliseconds(20), record.Note(1));
  timers.Schedule(now + absl::Milliseconds(40), record.Note(2));
  EXPECT_TRUE(timers.Cancel(cancelled));
  EXPECT_FALSE(timers.Cancel(cancelled));  // once
  EXPECT_EQ(record.WaitFor(1), (std::vector<int>{2}));
}

TEST(TimerQueueTest, CancelAfterTheCallbackRanIsFalse) {
  TimerQueue timers;
  Record record;
  const uint64_t id = timers.Schedule(absl::Now(), record.Note(1));
  ASSERT_EQ(record.WaitFor(1).size(), 1u);
  EXPECT_FALSE(timers.Cancel(id));
  EXPECT_FALSE(timers.Cancel(0));  // never an id
}

TEST(TimerQueueTest, DestroyingTheQueueDropsWhatIsScheduled) {
  Record record;
  {
    TimerQueue timers;
    timers.Schedule(absl::Now() + absl::Hours(1), record.Note(1));
    EXPECT_EQ(timers.pending(), 1u);
  }  // returns at once (not in an hour), without running it
  EXPECT_TRUE(record.Values().empty());
}

}  // namespace
}  // namespace filemesh::internal
