// OperationStore: the operations RestGateway hands out with a 202 (calls
// the broker queued) and their outcomes, AIP-151 style: each has a public
// id, is pending until the call's reply comes, and then done with the
// reply's status and response. Three backends (OpenOperationStore):
//
//   ""   (or ":memory:")      in this process only (the SDK's default)
//   a file path              SQLite: outlives the gateway (sqlite_operations.h)
//   postgresql://...         PostgreSQL: shared by gateway replicas
//                            (postgres_operations.h)
//
// Each is bounded in count and in the bytes of its outcomes (past either the
// oldest operations are forgotten, counted in evicted()) and in age (an
// operation expires `ttl` after it was made). The outcome of a call is
// written once: whoever takes its reply first writes it, a second Complete
// (a redelivered reply, the same reply taken by two gateways) changes
// nothing.
//
// Thread safety: every method may be called from any thread.

#ifndef FILEMESH_SRC_REST_OPERATION_STORE_H_
#define FILEMESH_SRC_REST_OPERATION_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace filemesh::internal {

// What a queued call asked for (StoredOperation::kind).
enum class OperationKind { kList = 0, kSearch = 1 };

struct OperationLimits {
  size_t capacity = 10000;               // operations at most (at least 1)
  size_t max_bytes = size_t{256} << 20;  // of their outcomes together (at least 1)
  absl::Duration ttl = absl::Hours(1);   // from creation (positive)
};

// One operation as stored.
struct StoredOperation {
  std::string id;       // public, random: set by Add
  std::string call_id;  // the queued call's id (its AMQP correlation_id)
  int kind = 0;         // an OperationKind
  int served_by = 0;    // the TransportKind that queued it
  std::string path;     // the path asked about (scoped keys read their own)
  // The gateway that queued the call (random per process): the one whose
  // channel can still be asked about it.
  std::string owner;
  absl::Time create_time;  // set by Add
  absl::Time update_time;  // set by Add and Complete
  bool done = false;
  // Once done: the call's status and, when OK, its serialized response.
  absl::Status error;
  std::string response;
};

class OperationStore {
 public:
  virtual ~OperationStore() = default;

  // "memory", "sqlite" or "postgresql".
  virtual std::string_view backend() const = 0;
  // Stores a new pending operation for `op.call_id` (id and times are set
  // here) and returns its public id.
  virtual absl::StatusOr<std::string> Add(const StoredOperation& op, absl::Time now) = 0;
  // The operation `id`; nullopt when unknown or expired.
  virtual absl::StatusOr<std::optional<StoredOperation>> Find(std::string_view id,
                                                              absl::Time now) = 0;
  // Writes the outcome of call `call_id` once: true when this call did,
  // false when it was done already or is unknown (a redelivered reply).
  virtual absl::StatusOr<bool> Complete(std::string_view call_id, const absl::Status& status,
                                        std::string_view response, absl::Time now) = 0;
  // Operations stored (expired ones may count until the next write).
  virtual absl::StatusOr<size_t> Count() = 0;
  // Operations forgotten before their ttl to stay within the bounds.
  virtual uint64_t evicted() const = 0;
};

// InvalidArgument unless capacity and max_bytes are at least 1 and ttl is
// positive.
absl::Status CheckOperationLimits(const OperationLimits& limits);

// In this process's memory.
std::unique_ptr<OperationStore> NewMemoryOperationStore(OperationLimits limits);

// The store `where` names: "" or ":memory:" in memory; a "postgresql://" or
// "postgres://" URL a PostgreSQL database (libpq's URL); else an SQLite file
// (created if missing; its directory must exist).
absl::StatusOr<std::unique_ptr<OperationStore>> OpenOperationStore(const std::string& where,
                                                                   OperationLimits limits);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_OPERATION_STORE_H_
