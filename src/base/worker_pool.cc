#include "base/worker_pool.h"

#include <system_error>
#include <utility>

#include "base/cpus.h"

namespace filemesh::internal {

WorkerPool::WorkerPool(int threads, size_t max_queued) : max_queued_(max_queued) {
  if (threads <= 0) threads = UsableCpus();
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    try {
      threads_.emplace_back([this] { Run(); });
    } catch (const std::system_error&) {
      break;  // no more threads to be had: work with those started
    }
  }
}

WorkerPool::~WorkerPool() { Stop(); }

bool WorkerPool::Submit(std::function<void()> task) {
  MutexLock lock(&mu_);
  if (stopping_ || threads_.empty() || queue_.size() >= max_queued_) return false;
  queue_.push_back(std::move(task));
  // Under the lock: the task may run, and its end let the owner stop and
  // destroy the pool, before a notify made after unlocking would run.
  cv_.Signal();
  return true;
}

void WorkerPool::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait();
      if (queue_.empty()) return;  // stopping, and nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace filemesh::internal
