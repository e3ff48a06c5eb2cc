#include "rpc/timer_queue.h"

#include <utility>

#include "absl/time/clock.h"

namespace filemesh::internal {

TimerQueue::TimerQueue() : thread_([this] { Run(); }) {}

TimerQueue::~TimerQueue() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  thread_.join();
}

uint64_t TimerQueue::Schedule(absl::Time when, std::function<void()> callback) {
  MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  const bool earliest = queue_.empty() || when < queue_.begin()->first;
  ids_.emplace(id, queue_.emplace(when, std::make_pair(id, std::move(callback))));
  if (earliest) cv_.SignalAll();
  return id;
}

bool TimerQueue::Cancel(uint64_t id) {
  MutexLock lock(&mu_);
  auto it = ids_.find(id);
  if (it == ids_.end()) return false;
  queue_.erase(it->second);
  ids_.erase(it);
  return true;
}

size_t TimerQueue::pending() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

void TimerQueue::Run() {
  mu_.Lock();
  while (!stopping_) {
    if (queue_.empty()) {
      cv_.Wait();
      continue;
    }
    const absl::Time due = queue_.begin()->first;
    if (absl::Now() < due) {
      // Wakes early for a new earliest timer or for the destructor.
      cv_.WaitUntil(due);
      continue;
    }
    std::function<void()> callback = std::move(queue_.begin()->second.second);
    ids_.erase(queue_.begin()->second.first);
    queue_.erase(queue_.begin());
    mu_.Unlock();
    callback();
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace filemesh::internal
