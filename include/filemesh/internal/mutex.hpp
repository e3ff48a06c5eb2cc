// Not part of filemesh's contract: installed only because the header-only
// filemesh::testing target uses it; it may change in any release.
//
// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with
// the thread-safety annotations of absl/base/thread_annotations.h, so that
// members say ABSL_GUARDED_BY(mu_) and functions
// ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_), and clang's -Wthread-safety checks
// every access (CI builds the libraries with it; docs/architecture.md), as
// LevelDB's port::Mutex does.
//
// Why not absl::Mutex, which is annotated already: Debian's Abseil is built
// with deadlock detection on, a global lock graph updated on every lock,
// about a third of a loopback call (see TuneProcessForRpc), which a library
// must not switch off for its user; and it is not built for ThreadSanitizer,
// which then cannot see it synchronise.
//
//   Mutex mu_;
//   int count_ ABSL_GUARDED_BY(mu_) = 0;
//   CondVar changed_{&mu_};
//   ...
//   MutexLock lock(&mu_);
//   while (count_ == 0) changed_.Wait();

#ifndef FILEMESH_INTERNAL_MUTEX_HPP_
#define FILEMESH_INTERNAL_MUTEX_HPP_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace filemesh::internal {

class CondVar;

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Tells the analysis that the caller holds the lock (it is not checked at
  // run time): for callbacks the analysis cannot follow.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable bound to one Mutex. Each wait needs the mutex held and
// holds it again when it returns; wake-ups may be spurious, so wait in a loop
// on the condition (written in the caller, where the analysis sees the lock).
class CondVar {
 public:
  explicit CondVar(Mutex* mu) : mu_(mu) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait() {
    std::unique_lock<std::mutex> lock(mu_->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // Waits until notified or `deadline`; true if the deadline passed.
  bool WaitUntil(absl::Time deadline) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    std::unique_lock<std::mutex> lock(mu_->mu_, std::adopt_lock);
    const std::cv_status status = cv_.wait_for(lock, absl::ToChronoNanoseconds(left));
    lock.release();
    return status == std::cv_status::timeout;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  Mutex* const mu_;
  std::condition_variable cv_;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_INTERNAL_MUTEX_HPP_
