// MatchStream: a streaming search's matches on their way from the walkers to
// the caller's callback. Walkers hand matches over in batches; the caller's
// thread delivers every waiting match in one SearchBatch, or only progress
// when none wait and the progress interval has passed. Pool walkers wait while
// kMaxPendingMatches wait for the caller, so a slow consumer slows the walk
// and memory stays bounded.

#ifndef FILEMESH_SRC_FS_MATCH_STREAM_H_
#define FILEMESH_SRC_FS_MATCH_STREAM_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "filemesh/file_searcher.hpp"
#include "filemesh/internal/mutex.hpp"

namespace filemesh::internal {

class MatchStream {
 public:
  // A walker hands its matches over once it holds this many (and after each
  // directory); pool walkers wait while kMaxPendingMatches wait.
  static constexpr size_t kBatch = 256;
  static constexpr size_t kMaxPendingMatches = 4096;

  // `on_batch` must outlive the stream; `matches_pending` runs (on a pool
  // walker's thread) after matches were handed over, to wake the deliverer.
  MatchStream(const SearchBatchCallback* on_batch, absl::Duration progress_interval,
              std::function<void()> matches_pending);

  // Hands `matches` over (and clears it). A pool walker (`caller` false)
  // first waits for room, unless the stream was stopped; the caller never
  // waits (it is the one that makes room: it delivers next).
  void Publish(std::vector<v1::FileEntry>* matches, bool caller);

  // On the caller's thread: the waiting matches to the callback, or only
  // progress (`scanned` entries so far) when none wait and the interval has
  // passed, or when `force`. False when the callback said stop.
  bool Deliver(bool force, uint64_t scanned);

  // On the caller's thread: whether Deliver has something to do.
  bool Due() const;

  // Matches waiting for the caller, read without the lock.
  const std::atomic<size_t>& pending_count() const { return pending_count_; }

  // The callback returned false.
  bool cancelled();

  // The walk stopped: pool walkers waiting for room go on (and drop theirs).
  void Stop();

 private:
  const SearchBatchCallback* const on_batch_;
  const absl::Duration progress_interval_;
  const std::function<void()> matches_pending_;

  Mutex mu_;
  // Found, not yet delivered.
  std::vector<v1::FileEntry> pending_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> pending_count_{0};  // pending_.size()
  // pending_ has room, or the walk stopped.
  CondVar space_cv_{&mu_};
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;

  // The caller's thread only.
  absl::Time last_delivery_ = absl::Now();
  uint64_t delivered_ = 0;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_MATCH_STREAM_H_
