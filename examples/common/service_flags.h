// The flags mserv1 and mserv2 share, and the ServiceHost they describe.
// Each flag can also be set from FILEMESH_<NAME> (FILEMESH_ROOT, ...).

#ifndef FILEMESH_EXAMPLES_COMMON_SERVICE_FLAGS_H_
#define FILEMESH_EXAMPLES_COMMON_SERVICE_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/rpc/service_host.hpp"

ABSL_DECLARE_FLAG(std::string, root);
ABSL_DECLARE_FLAG(std::string, grpc_listen);
ABSL_DECLARE_FLAG(std::string, amqp_url);
ABSL_DECLARE_FLAG(std::string, queue_prefix);
ABSL_DECLARE_FLAG(int, threads);
ABSL_DECLARE_FLAG(bool, log_calls);
ABSL_DECLARE_FLAG(int, max_inflight);
ABSL_DECLARE_FLAG(absl::Duration, max_call_time);
ABSL_DECLARE_FLAG(bool, redact_outside_targets);
ABSL_DECLARE_FLAG(bool, grpc_reflection);

namespace filemesh_examples {

// The host the flags ask for: InvalidArgument, naming the flag, when --root
// is empty, neither --grpc_listen nor --amqp_url is set, --threads is
// negative, or a limit (--max_inflight, --max_call_time,
// --max_message_bytes) is out of range. (Whether --root is a directory, the
// service checks.)
absl::StatusOr<filemesh::ServiceHostOptions> ServiceHostOptionsFromFlags();

// Starts `host` (exits through Exit() if it cannot), serves until SIGTERM or
// SIGINT, then shuts it down gracefully. Call
// filemesh::TerminationSignals::Block() first.
void ServeUntilTerminated(const char* program, filemesh::ServiceHost& host);

// Prints "PROGRAM: status" to stderr and exits: 2 for a bad flag
// (InvalidArgument, NotFound, FailedPrecondition), 1 for anything else.
[[noreturn]] void Exit(const char* program, const absl::Status& status);

}  // namespace filemesh_examples

#endif  // FILEMESH_EXAMPLES_COMMON_SERVICE_FLAGS_H_
