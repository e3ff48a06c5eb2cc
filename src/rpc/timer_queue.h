// TimerQueue: runs callbacks at given times on one thread of its own.
//
//   TimerQueue timers;
//   uint64_t id = timers.Schedule(absl::Now() + absl::Milliseconds(250), [] { ... });
//   if (timers.Cancel(id)) { /* it will never run */ }
//
// Callbacks run one at a time, in time order, without the queue's lock held;
// they must be short (they delay the ones due after them) and may Schedule
// or Cancel. The destructor stops the thread; callbacks still scheduled then
// never run.
//
// Thread safety: every method may be called from any thread.

#ifndef FILEMESH_SRC_RPC_TIMER_QUEUE_H_
#define FILEMESH_SRC_RPC_TIMER_QUEUE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/time/time.h"

namespace filemesh::internal {

class TimerQueue {
 public:
  TimerQueue();
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `callback` at `when` (at once when it has passed); returns an id
  // for Cancel, never 0.
  uint64_t Schedule(absl::Time when, std::function<void()> callback);

  // True when the callback had not started and now never will; false when
  // it is running or has run (or `id` is unknown).
  bool Cancel(uint64_t id);

  // Callbacks scheduled and neither run nor cancelled.
  size_t pending() const;

 private:
  void Run();

  using Queue = std::multimap<absl::Time, std::pair<uint64_t, std::function<void()>>>;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Queue queue_;                                        // guarded by mu_
  std::unordered_map<uint64_t, Queue::iterator> ids_;  // guarded by mu_
  uint64_t next_id_ = 1;                               // guarded by mu_
  bool stopping_ = false;                              // guarded by mu_
  std::thread thread_;                                 // last: uses the above
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_TIMER_QUEUE_H_
