#include "fs/match_stream.h"

#include <utility>

namespace filemesh::internal {

MatchStream::MatchStream(const SearchBatchCallback* on_batch, absl::Duration progress_interval,
                         std::function<void()> matches_pending)
    : on_batch_(on_batch),
      progress_interval_(progress_interval),
      matches_pending_(std::move(matches_pending)) {}

void MatchStream::Publish(std::vector<v1::FileEntry>* matches, bool caller) {
  {
    MutexLock lock(&mu_);
    if (!caller) {
      while (!stopped_ && pending_.size() >= kMaxPendingMatches) space_cv_.Wait();
    }
    if (!cancelled_) {
      for (v1::FileEntry& e : *matches) pending_.push_back(std::move(e));
    }
    pending_count_.store(pending_.size());
  }
  matches->clear();
  if (!caller) matches_pending_();
}

bool MatchStream::Deliver(bool force, uint64_t scanned) {
  SearchBatch batch;
  {
    MutexLock lock(&mu_);
    if (cancelled_) return false;
    batch.matches.swap(pending_);
    pending_count_.store(0);
  }
  space_cv_.SignalAll();
  const absl::Time now = absl::Now();
  if (batch.matches.empty() && !force && now - last_delivery_ < progress_interval_) return true;
  last_delivery_ = now;
  delivered_ += batch.matches.size();
  batch.scanned_entries = scanned;
  batch.matches_so_far = delivered_;
  if ((*on_batch_)(batch)) return true;
  MutexLock lock(&mu_);
  cancelled_ = true;
  pending_.clear();
  pending_count_.store(0);
  return false;
}

bool MatchStream::Due() const {
  return pending_count_.load(std::memory_order_relaxed) > 0 ||
         absl::Now() - last_delivery_ >= progress_interval_;
}

bool MatchStream::cancelled() {
  MutexLock lock(&mu_);
  return cancelled_;
}

void MatchStream::Stop() {
  MutexLock lock(&mu_);
  stopped_ = true;
  space_cv_.SignalAll();
}

}  // namespace filemesh::internal
