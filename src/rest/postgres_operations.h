// PostgresOperations: an OperationStore (operation_store.h) in a PostgreSQL
// database, shared by any number of gateway replicas: whichever takes a
// queued call's reply writes its outcome, and any replica answers GET
// /api/v1/operations/{id}. One row per operation in the table
// filemesh_operations (beside filemesh_schema, its version), made on first
// use; the outcome of a call is written once (Complete is idempotent, across
// replicas too: the row's update is conditional on it being pending).
//
// The URL is libpq's (postgresql://user@host:port/db?sslmode=verify-full&
// sslrootcert=...): TLS, certificates and passwords are libpq's. Unless the
// URL says otherwise, the connection gives up after kConnectTimeout
// (connect_timeout), a silent peer is noticed within kTcpUserTimeout
// (tcp_user_timeout, with TCP keepalives) and a statement is cancelled after
// kStatementTimeout (statement_timeout), so no call waits on the database
// for longer than these. A connection found broken is made again at the next
// call; a read (Find, Count) or a completion (Complete, which is idempotent)
// that failed on a broken connection is tried once more on a new one; Add is
// not (a second insert could make a second operation), and fails instead.
//
// Times are the callers' (`now`): replicas should keep their clocks in
// step (NTP), as an operation expires `ttl` after its creation by one
// replica's clock and is read by another's.
//
// Thread safety: every method may be called from any thread (one
// connection, serialized).

#ifndef FILEMESH_SRC_REST_POSTGRES_OPERATIONS_H_
#define FILEMESH_SRC_REST_POSTGRES_OPERATIONS_H_

#include <atomic>
#include <cstdint>
#include <functional>
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

class PostgresOperations final : public OperationStore {
 public:
  // The defaults a URL may override (see above).
  static constexpr absl::Duration kConnectTimeout = absl::Seconds(10);
  static constexpr absl::Duration kTcpUserTimeout = absl::Seconds(10);
  static constexpr absl::Duration kStatementTimeout = absl::Seconds(10);

  // Connects to `url` (postgresql:// or postgres://) and makes the tables
  // if the database has none. A database whose filemesh_schema holds
  // another version is refused (FailedPrecondition), never rewritten.
  // Errors name the URL without its password.
  static absl::StatusOr<std::unique_ptr<PostgresOperations>> Open(const std::string& url,
                                                                  OperationLimits limits);
  ~PostgresOperations() override;

  PostgresOperations(const PostgresOperations&) = delete;
  PostgresOperations& operator=(const PostgresOperations&) = delete;

  std::string_view backend() const override { return "postgresql"; }
  absl::StatusOr<std::string> Add(const StoredOperation& op, absl::Time now) override;
  absl::StatusOr<std::optional<StoredOperation>> Find(std::string_view id, absl::Time now) override;
  absl::StatusOr<bool> Complete(std::string_view call_id, const absl::Status& status,
                                std::string_view response, absl::Time now) override;
  absl::StatusOr<size_t> Count() override;
  uint64_t evicted() const override { return evicted_.load(); }

  // Connections made again after one broke (not counting the first).
  uint64_t reconnects() const { return reconnects_.load(); }

 private:
  class Params;
  class Result;
  PostgresOperations(std::string url, OperationLimits limits);

  // Connects when there is no connection or it broke, and sets the
  // session up.
  absl::Status Connect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One statement: its result, or Unavailable naming what failed.
  absl::StatusOr<Result> Exec(std::string_view what, const char* sql, const Params& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `attempt` on a connection; once more on a new one when it failed
  // because the connection broke and `retry` is set.
  template <typename T>
  absl::StatusOr<T> WithConnection(bool retry, const std::function<absl::StatusOr<T>()>& attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes the tables, or checks their version.
  absl::Status PrepareSchema() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops expired operations, then the oldest past the bounds.
  absl::Status Purge(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Broken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string url_;       // as given (holds any password)
  const std::string redacted_;  // for messages
  const OperationLimits limits_;
  std::atomic<uint64_t> evicted_{0};
  std::atomic<uint64_t> reconnects_{0};
  Mutex mu_;
  void* conn_ ABSL_GUARDED_BY(mu_) = nullptr;  // PGconn*
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_POSTGRES_OPERATIONS_H_
