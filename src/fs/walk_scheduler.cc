#include "fs/walk_scheduler.h"

#include <iterator>
#include <utility>

namespace filemesh::internal {

WalkScheduler::WalkScheduler(WorkItem first, const std::atomic<bool>* stopped) : stopped_(stopped) {
  MutexLock lock(&mu_);  // no walker yet: never contended
  shared_.push_back(std::move(first));
}

bool WalkScheduler::Join() {
  MutexLock lock(&mu_);
  if (closed_ || finished_) return false;
  ++helpers_;
  return true;
}

void WalkScheduler::Leave() {
  MutexLock lock(&mu_);
  if (--helpers_ == 0) helpers_done_.SignalAll();
}

void WalkScheduler::Close() {
  MutexLock lock(&mu_);
  closed_ = true;
  while (helpers_ != 0) helpers_done_.Wait();
  shared_.clear();
}

WalkScheduler::Next WalkScheduler::Take(std::vector<WorkItem>* stack,
                                        const std::atomic<size_t>* pending, absl::Time tick) {
  MutexLock lock(&mu_);
  idle_.fetch_add(1, std::memory_order_relaxed);
  if (pending != nullptr) deliverer_waiting_.store(true);
  Next next = Next::kDone;
  for (;;) {
    if (stopped_->load() || finished_) break;
    if (!shared_.empty()) {
      stack->push_back(std::move(shared_.back()));
      shared_.pop_back();
      next = Next::kItem;
      break;
    }
    if (idle_.load(std::memory_order_relaxed) == 1 + helpers_) {
      finished_ = true;  // every walker is here: no directory is left
      cv_.SignalAll();
      break;
    }
    if (pending == nullptr) {
      cv_.Wait();
    } else if (pending->load() != 0 || cv_.WaitUntil(tick)) {
      next = Next::kDeliver;
      break;
    }
  }
  if (pending != nullptr) deliverer_waiting_.store(false);
  idle_.fetch_sub(1, std::memory_order_relaxed);
  return next;
}

void WalkScheduler::Share(std::vector<WorkItem>* stack) {
  const auto half = static_cast<std::ptrdiff_t>(stack->size() / 2);
  {
    MutexLock lock(&mu_);
    if (idle_.load(std::memory_order_relaxed) == 0) return;  // taken care of meanwhile
    shared_.insert(shared_.end(), std::make_move_iterator(stack->begin()),
                   std::make_move_iterator(stack->begin() + half));
  }
  stack->erase(stack->begin(), stack->begin() + half);
  cv_.SignalAll();
}

void WalkScheduler::MatchesPending() {
  if (!deliverer_waiting_.load()) return;
  MutexLock lock(&mu_);
  cv_.SignalAll();
}

void WalkScheduler::Wake() {
  MutexLock lock(&mu_);
  cv_.SignalAll();
}

}  // namespace filemesh::internal
