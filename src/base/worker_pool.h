// A fixed pool of threads running submitted tasks in order of arrival, with
// a bound on queued work so an overloaded host refuses instead of hoarding.
// ServiceHost runs handlers on one; FileSearcher's walkers share another.

#ifndef FILEMESH_SRC_BASE_WORKER_POOL_H_
#define FILEMESH_SRC_BASE_WORKER_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "filemesh/internal/mutex.hpp"

namespace filemesh::internal {

class WorkerPool {
 public:
  // `threads` <= 0 means one per CPU the process may use (UsableCpus). When
  // the system refuses a thread (a limit), the pool keeps those it has:
  // threads() says how many, possibly none (then Submit refuses everything).
  WorkerPool(int threads, size_t max_queued);
  // Runs what was queued, then joins.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False (and `task` not run) when the queue is full, the pool has no
  // thread, or it is stopping.
  bool Submit(std::function<void()> task);

  // Stops accepting work, finishes what was queued, joins the threads.
  void Stop();

  // Threads started (before Stop).
  size_t threads() const { return threads_.size(); }

 private:
  void Run();

  const size_t max_queued_;
  Mutex mu_;
  CondVar cv_{&mu_};
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Started by the constructor; joined by Stop.
  std::vector<std::thread> threads_;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_BASE_WORKER_POOL_H_
