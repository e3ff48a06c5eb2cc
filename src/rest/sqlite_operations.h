// SqliteOperations: an OperationStore (operation_store.h) in an SQLite file,
// so that the gateway's operations (the 202s of queued calls and their
// outcomes) outlive the gateway. One row per operation; the outcome of its call is
// written once, whoever takes the call's reply (Complete is idempotent).
// Bounded in count and in outcome bytes (the oldest go first past either,
// counted in evicted()) and in age (`ttl` from creation).
//
// The file is opened in WAL mode with a busy timeout, so several processes
// may share it on one host; a gateway on another host needs the PostgreSQL
// backend.
//
// Thread safety: every method may be called from any thread (one connection,
// serialized).

#ifndef FILEMESH_SRC_REST_SQLITE_OPERATIONS_H_
#define FILEMESH_SRC_REST_SQLITE_OPERATIONS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/internal/mutex.hpp"
#include "rest/operation_store.h"

namespace filemesh::internal {

class SqliteOperations final : public OperationStore {
 public:
  // Opens (creating) the database at `path`. An existing file of another
  // schema version is refused (FailedPrecondition), never rewritten.
  static absl::StatusOr<std::unique_ptr<SqliteOperations>> Open(const std::string& path,
                                                                OperationLimits limits);
  ~SqliteOperations() override;

  SqliteOperations(const SqliteOperations&) = delete;
  SqliteOperations& operator=(const SqliteOperations&) = delete;

  std::string_view backend() const override { return "sqlite"; }
  absl::StatusOr<std::string> Add(const StoredOperation& op, absl::Time now) override;
  absl::StatusOr<std::optional<StoredOperation>> Find(std::string_view id, absl::Time now) override;
  absl::StatusOr<bool> Complete(std::string_view call_id, const absl::Status& status,
                                std::string_view response, absl::Time now) override;
  absl::StatusOr<size_t> Count() override;
  uint64_t evicted() const override { return evicted_.load(); }

 private:
  class Statement;
  SqliteOperations(void* db, OperationLimits limits);
  // Drops expired operations, then the oldest past the bounds.
  absl::Status Purge(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(std::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const OperationLimits limits_;
  std::atomic<uint64_t> evicted_{0};
  Mutex mu_;
  void* db_ ABSL_GUARDED_BY(mu_);  // sqlite3*
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_SQLITE_OPERATIONS_H_
