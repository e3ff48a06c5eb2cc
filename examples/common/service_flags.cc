#include "common/service_flags.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

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
ABSL_FLAG(std::string, tls_cert, "",
          "gRPC over TLS: this service's certificate chain (PEM), re-read when it changes");
ABSL_FLAG(std::string, tls_key, "", "gRPC over TLS: the private key of --tls_cert (PEM)");
ABSL_FLAG(std::string, tls_ca, "",
          "mutual TLS: callers must present a certificate this CA file (PEM) signed");
ABSL_FLAG(bool, require_client_cert, true,
          "with --tls_ca: refuse callers without a client certificate (false: verify one if "
          "given)");
ABSL_FLAG(std::vector<std::string>, allowed_peers, {},
          "with --tls_ca: names (SAN or CN) of which a caller's certificate must carry one, "
          "comma-separated; empty: any certificate --tls_ca signed");
ABSL_FLAG(bool, insecure, false,
          "allow plain-text gRPC on an address other than loopback (anyone who reaches the port "
          "may list and search --root)");
ABSL_FLAG(bool, grpc_reflection, false,
          "serve gRPC server reflection (for grpcurl and similar tools)");
ABSL_FLAG(absl::Duration, grpc_max_connection_age, absl::Minutes(30),
          "longest a client's gRPC connection is kept before it is asked to reconnect (how long "
          "a rotated certificate can stay in use); at least 100ms");

ABSL_FLAG(int64_t, max_request_bytes, 64 * 1024,
          "largest request taken, on both transports (requests are a path and a pattern); "
          "a bigger one is answered RESOURCE_EXHAUSTED before it is held");
ABSL_FLAG(int, grpc_max_concurrent_streams, 100,
          "calls one gRPC connection may carry at once; a client's further calls wait");
ABSL_FLAG(int64_t, grpc_memory_quota_bytes, int64_t{1} << 30,
          "memory gRPC's server may use for connections and calls (at least 1 MiB)");

namespace filemesh_examples {

absl::StatusOr<filemesh::ServiceHostOptions> ServiceHostOptionsFromFlags() {
  filemesh::ServiceHostOptions options;
  options.grpc_listen = absl::GetFlag(FLAGS_grpc_listen);
  options.grpc_tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.grpc_tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.grpc_tls.ca_file = absl::GetFlag(FLAGS_tls_ca);
  options.grpc_tls.require_peer_certificate = absl::GetFlag(FLAGS_require_client_cert);
  options.grpc_tls.allowed_peers = absl::GetFlag(FLAGS_allowed_peers);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  options.grpc_max_connection_age = absl::GetFlag(FLAGS_grpc_max_connection_age);
  if (options.grpc_max_connection_age < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--grpc_max_connection_age must be 100ms or more, not ",
                     absl::FormatDuration(options.grpc_max_connection_age)));
  }
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
  const int64_t max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  if (max_request_bytes < 1 || max_request_bytes > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_request_bytes must be between 1 and 2147483647, not ", max_request_bytes));
  }
  options.max_request_bytes = static_cast<size_t>(max_request_bytes);
  options.grpc_max_concurrent_streams = absl::GetFlag(FLAGS_grpc_max_concurrent_streams);
  if (options.grpc_max_concurrent_streams < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--grpc_max_concurrent_streams must be 1 or more, not ",
                     options.grpc_max_concurrent_streams));
  }
  const int64_t quota = absl::GetFlag(FLAGS_grpc_memory_quota_bytes);
  if (quota < (int64_t{1} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--grpc_memory_quota_bytes must be at least 1048576 (1 MiB), not ", quota));
  }
  options.grpc_memory_quota_bytes = static_cast<size_t>(quota);
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
