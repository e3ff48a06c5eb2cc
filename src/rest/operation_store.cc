#include "rest/operation_store.h"

#include <algorithm>
#include <utility>

#include "base/random_id.h"

namespace filemesh::internal {

OperationStore::OperationStore(size_t capacity, absl::Duration ttl, size_t max_bytes)
    : capacity_(std::max<size_t>(capacity, 1)),
      ttl_(ttl),
      max_bytes_(std::max<size_t>(max_bytes, 1)) {}

std::string OperationStore::Add(OperationKind kind, std::string channel_id, TransportKind served_by,
                                absl::Time now, std::string path) {
  auto record = std::make_shared<OperationRecord>();
  record->kind = kind;
  record->path = std::move(path);
  record->channel_id = std::move(channel_id);
  record->served_by = served_by;

  MutexLock lock(&mu_);
  std::string id = RandomHexId();
  while (entries_.count(id) != 0) id = RandomHexId();
  oldest_first_.push_back(id);
  entries_.emplace(id, Entry{std::move(record), now + ttl_, std::prev(oldest_first_.end())});
  Purge(now);
  return id;
}

std::shared_ptr<OperationRecord> OperationStore::Find(std::string_view id, absl::Time now) {
  MutexLock lock(&mu_);
  Purge(now);
  auto it = entries_.find(id);
  if (it == entries_.end()) return nullptr;
  return it->second.record;
}

void OperationStore::Remove(std::string_view id) {
  MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  bytes_ -= it->second.bytes;
  oldest_first_.erase(it->second.order);
  entries_.erase(it);
}

void OperationStore::Finished(std::string_view id, size_t bytes, absl::Time now) {
  MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  bytes_ += bytes - it->second.bytes;
  it->second.bytes = bytes;
  Purge(now);
}

size_t OperationStore::size() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

void OperationStore::Purge(absl::Time now) {
  // Every operation lives for the same ttl, so creation order is expiry order.
  while (!oldest_first_.empty()) {
    auto it = entries_.find(oldest_first_.front());
    const bool expired = it->second.expires <= now;
    if (entries_.size() <= capacity_ && bytes_ <= max_bytes_ && !expired) break;
    if (!expired) evicted_.fetch_add(1);
    bytes_ -= it->second.bytes;
    entries_.erase(it);
    oldest_first_.pop_front();
  }
}

}  // namespace filemesh::internal
