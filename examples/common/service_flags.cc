#include "common/service_flags.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/queue_flags.h"
#include "filemesh/service/process.hpp"

ABSL_FLAG(std::string, root, "", "directory to serve (required)");
ABSL_FLAG(std::string, grpc_listen, "",
          "gRPC listen address HOST:PORT (port 0 picks one); empty: no gRPC");
ABSL_FLAG(int, threads, 0, "handler threads; 0: one per core");
ABSL_FLAG(bool, log_calls, false, "log one event=call line per handled call");
ABSL_FLAG(int, max_inflight, 1000,
          "calls accepted and not yet answered; past it RESOURCE_EXHAUSTED (REST: 503)");
ABSL_FLAG(absl::Duration, max_call_time, absl::Seconds(30),
          "longest a call may run, whatever deadline its caller gave");
ABSL_FLAG(bool, redact_outside_targets, true,
          "withhold the target text of symlinks that point outside --root");

namespace filemesh_examples {

absl::StatusOr<filemesh::ServiceHostOptions> ServiceHostOptionsFromFlags() {
  filemesh::ServiceHostOptions options;
  options.grpc_listen = absl::GetFlag(FLAGS_grpc_listen);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.log_calls = absl::GetFlag(FLAGS_log_calls);
  const int max_inflight = absl::GetFlag(FLAGS_max_inflight);
  if (max_inflight < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_inflight must be 1 or more, not ", max_inflight));
  }
  options.max_inflight = static_cast<size_t>(max_inflight);
  options.max_call_time = absl::GetFlag(FLAGS_max_call_time);
  if (options.max_call_time <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("--max_call_time must be positive, not ",
                                                   absl::FormatDuration(options.max_call_time)));
  }
  absl::StatusOr<size_t> max_message_bytes = MaxMessageBytesFromFlags();
  if (!max_message_bytes.ok()) return max_message_bytes.status();
  options.max_message_bytes = *max_message_bytes;
  absl::StatusOr<filemesh::AmqpOptions> amqp = AmqpOptionsFromFlags();
  if (!amqp.ok()) return amqp.status();
  options.amqp = *std::move(amqp);
  if (absl::GetFlag(FLAGS_root).empty()) {
    return absl::InvalidArgumentError("--root is required: the directory to serve");
  }
  if (options.grpc_listen.empty() && options.amqp.url.empty()) {
    return absl::InvalidArgumentError("set --grpc_listen, --amqp_url or both");
  }
  if (options.threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads must be 0 or more, not ", options.threads));
  }
  return options;
}

void ServeUntilTerminated(const char* program, filemesh::ServiceHost& host) {
  if (absl::Status status = host.Start(); !status.ok()) Exit(program, status);
  filemesh::TerminationSignals::Wait();
  host.Shutdown(absl::Seconds(5));
}

void Exit(const char* program, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", program, status.ToString().c_str());
  const absl::StatusCode code = status.code();
  std::exit(code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kNotFound ||
                    code == absl::StatusCode::kFailedPrecondition
                ? 2
                : 1);
}

}  // namespace filemesh_examples
