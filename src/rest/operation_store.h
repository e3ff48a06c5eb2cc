// The operations RestGateway hands out with a 202: each public id (random,
// URL-safe) names a call the broker queued, and keeps the finished answer so
// that every later GET gives the same one. Bounded in number (the oldest is
// forgotten past the capacity) and in age (forgotten `ttl` after it was made).
//
// Thread safety: all methods may be called concurrently; a record's `mu`
// serializes fetching its reply.

#ifndef FILEMESH_SRC_REST_OPERATION_STORE_H_
#define FILEMESH_SRC_REST_OPERATION_STORE_H_

#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/rest/http.hpp"
#include "filemesh/rpc/transport.hpp"

namespace filemesh::internal {

enum class OperationKind { kList, kSearch };

struct OperationRecord {
  OperationKind kind = OperationKind::kList;
  // The id FailoverChannel gave the queued call (for TakeLateReply).
  std::string channel_id;
  TransportKind served_by = TransportKind::kNone;
  // The path the request asked about (relative to the root): a key limited
  // to a scope reads only the operations of paths within it.
  std::string path;

  Mutex mu;
  // The answer once the reply came.
  std::optional<HttpResponse> finished ABSL_GUARDED_BY(mu);
};

class OperationStore {
 public:
  // A capacity or max_bytes of 0 is taken as 1. `max_bytes` bounds the
  // finished answers held (Finished) together.
  OperationStore(size_t capacity, absl::Duration ttl, size_t max_bytes = size_t{256} << 20);

  // Remembers a queued call and returns its new public id.
  std::string Add(OperationKind kind, std::string channel_id, TransportKind served_by,
                  absl::Time now, std::string path = "");
  // The operation `id`, or null when it is unknown or expired at `now`.
  std::shared_ptr<OperationRecord> Find(std::string_view id, absl::Time now);
  // Forgets `id` (no-op when unknown).
  void Remove(std::string_view id);
  // Counts the `bytes` of `id`'s finished answer, now held; past max_bytes
  // the oldest operations are forgotten (perhaps `id` itself).
  void Finished(std::string_view id, size_t bytes, absl::Time now);
  // Operations forgotten before their ttl to stay within the capacity or
  // max_bytes.
  uint64_t evicted() const { return evicted_.load(); }
  // Operations remembered (expired ones may still count until the next Add
  // or Find).
  size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<OperationRecord> record;
    absl::Time expires;
    std::list<std::string>::iterator order;
    size_t bytes = 0;  // of the finished answer, once Finished
  };
  // Drops expired operations and the oldest past the capacity.
  void Purge(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  const absl::Duration ttl_;
  const size_t max_bytes_;
  std::atomic<uint64_t> evicted_{0};
  mutable Mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> oldest_first_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_OPERATION_STORE_H_
