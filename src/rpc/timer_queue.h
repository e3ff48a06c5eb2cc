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

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <unordered_map>

#include "absl/time/time.h"
#include "filemesh/internal/mutex.hpp"

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

  mutable Mutex mu_;
  CondVar cv_{&mu_};
  Queue queue_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, Queue::iterator> ids_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: uses the above
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_TIMER_QUEUE_H_
