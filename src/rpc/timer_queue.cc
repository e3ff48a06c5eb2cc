#include "rpc/timer_queue.h"

#include <utility>

#include "absl/time/clock.h"

namespace filemesh::internal {

TimerQueue::TimerQueue() : thread_([this] { Run(); }) {}

TimerQueue::~TimerQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t TimerQueue::Schedule(absl::Time when, std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_id_++;
  const bool earliest = queue_.empty() || when < queue_.begin()->first;
  ids_.emplace(id, queue_.emplace(when, std::make_pair(id, std::move(callback))));
  if (earliest) cv_.notify_all();
  return id;
}

bool TimerQueue::Cancel(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ids_.find(id);
  if (it == ids_.end()) return false;
  queue_.erase(it->second);
  ids_.erase(it);
  return true;
}

size_t TimerQueue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void TimerQueue::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (queue_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const absl::Time due = queue_.begin()->first;
    if (absl::Now() < due) {
      // Wakes early for a new earliest timer or for the destructor.
      cv_.wait_until(lock, absl::ToChronoTime(due));
      continue;
    }
    std::function<void()> callback = std::move(queue_.begin()->second.second);
    ids_.erase(queue_.begin()->second.first);
    queue_.erase(queue_.begin());
    lock.unlock();
    callback();
    lock.lock();
  }
}

}  // namespace filemesh::internal
