#include "rest/operation_store.h"

#include <algorithm>
#include <atomic>
#include <list>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "base/random_id.h"
#include "filemesh/internal/mutex.hpp"
#include "rest/postgres_operations.h"
#include "rest/sqlite_operations.h"

namespace filemesh::internal {
namespace {

class MemoryOperationStore final : public OperationStore {
 public:
  explicit MemoryOperationStore(OperationLimits limits) : limits_(limits) {}

  std::string_view backend() const override { return "memory"; }

  absl::StatusOr<std::string> Add(const StoredOperation& op, absl::Time now) override {
    MutexLock lock(&mu_);
    std::string id = RandomHexId();
    while (entries_.count(id) != 0) id = RandomHexId();
    Entry entry;
    entry.op = op;
    entry.op.id = id;
    entry.op.create_time = now;
    entry.op.update_time = now;
    entry.op.done = false;
    entry.op.error = absl::OkStatus();
    entry.op.response.clear();
    entry.expires = now + limits_.ttl;
    oldest_first_.push_back(id);
    entry.order = std::prev(oldest_first_.end());
    by_call_[op.call_id] = id;
    entries_.emplace(id, std::move(entry));
    Purge(now);
    return id;
  }

  absl::StatusOr<std::optional<StoredOperation>> Find(std::string_view id,
                                                      absl::Time now) override {
    MutexLock lock(&mu_);
    Purge(now);
    auto it = entries_.find(id);
    if (it == entries_.end()) return std::optional<StoredOperation>();
    return std::optional<StoredOperation>(it->second.op);
  }

  absl::StatusOr<bool> Complete(std::string_view call_id, const absl::Status& status,
                                std::string_view response, absl::Time now) override {
    MutexLock lock(&mu_);
    Purge(now);
    auto call = by_call_.find(call_id);
    if (call == by_call_.end()) return false;
    auto it = entries_.find(call->second);
    if (it == entries_.end() || it->second.op.done) return false;
    StoredOperation& op = it->second.op;
    op.done = true;
    op.error = status;
    op.response = status.ok() ? std::string(response) : std::string();
    op.update_time = now;
    it->second.bytes = op.response.size() + status.message().size();
    bytes_ += it->second.bytes;
    Purge(now);
    return true;
  }

  absl::StatusOr<size_t> Count() override {
    MutexLock lock(&mu_);
    return entries_.size();
  }

  uint64_t evicted() const override { return evicted_.load(); }

 private:
  struct Entry {
    StoredOperation op;
    absl::Time expires;
    std::list<std::string>::iterator order;
    size_t bytes = 0;  // of the outcome, once done
  };

  // Drops expired operations and the oldest past the bounds. Every
  // operation lives for the same ttl, so creation order is expiry order.
  void Purge(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!oldest_first_.empty()) {
      auto it = entries_.find(oldest_first_.front());
      const bool expired = it->second.expires <= now;
      if (entries_.size() <= limits_.capacity && bytes_ <= limits_.max_bytes && !expired) break;
      if (!expired) evicted_.fetch_add(1);
      bytes_ -= it->second.bytes;
      by_call_.erase(it->second.op.call_id);
      entries_.erase(it);
      oldest_first_.pop_front();
    }
  }

  const OperationLimits limits_;
  std::atomic<uint64_t> evicted_{0};
  Mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string, std::less<>> by_call_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> oldest_first_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::Status CheckOperationLimits(const OperationLimits& limits) {
  if (limits.capacity == 0 || limits.max_bytes == 0 || limits.ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "operation capacity and max bytes must be at least 1, and the ttl positive");
  }
  return absl::OkStatus();
}

std::unique_ptr<OperationStore> NewMemoryOperationStore(OperationLimits limits) {
  limits.capacity = std::max<size_t>(limits.capacity, 1);
  limits.max_bytes = std::max<size_t>(limits.max_bytes, 1);
  return std::make_unique<MemoryOperationStore>(limits);
}

absl::StatusOr<std::unique_ptr<OperationStore>> OpenOperationStore(const std::string& where,
                                                                   OperationLimits limits) {
  if (absl::Status checked = CheckOperationLimits(limits); !checked.ok()) return checked;
  if (where.empty() || where == ":memory:") return NewMemoryOperationStore(limits);
  if (absl::StartsWith(where, "postgresql://") || absl::StartsWith(where, "postgres://")) {
    absl::StatusOr<std::unique_ptr<PostgresOperations>> postgres =
        PostgresOperations::Open(where, limits);
    if (!postgres.ok()) return postgres.status();
    return std::unique_ptr<OperationStore>(*std::move(postgres));
  }
  absl::StatusOr<std::unique_ptr<SqliteOperations>> sqlite = SqliteOperations::Open(where, limits);
  if (!sqlite.ok()) return sqlite.status();
  return std::unique_ptr<OperationStore>(*std::move(sqlite));
}

}  // namespace filemesh::internal
