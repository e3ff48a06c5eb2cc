#include "common/queue_flags.h"

#include <cstdint>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "filemesh/rpc/transport.hpp"

ABSL_FLAG(std::string, amqp_url, "",
          "RabbitMQ broker, amqp://USER:PASS@HOST:PORT/VHOST, or amqps:// for TLS "
          "(?auth_mechanism=external to log in with --amqp_tls_cert); the nodes of a cluster "
          "separated by commas (at most 16; on losing one the connection goes to the next); "
          "empty: no AMQP");
ABSL_FLAG(std::string, quorum_queues, "auto",
          "declare every queue as a quorum queue (replicated on the cluster's nodes): true, "
          "false, or auto (true when --amqp_url lists more than one broker); the same on every "
          "service and gateway");
ABSL_FLAG(std::string, amqp_ca, "",
          "amqps: the CA file (PEM) the broker's certificate must lead to (empty: the system's "
          "CAs); the certificate must name the URL's host");
ABSL_FLAG(std::string, amqp_tls_cert, "",
          "amqps: a client certificate (PEM) for brokers that ask for one or map it to a user");
ABSL_FLAG(std::string, amqp_tls_key, "", "amqps: the private key of --amqp_tls_cert (PEM)");
ABSL_FLAG(std::string, queue_prefix, "",
          "prepended to every queue name; the same on every service and gateway");
ABSL_FLAG(absl::Duration, amqp_connect_timeout, absl::Seconds(5),
          "bound of one attempt to connect to the broker (TCP connect and AMQP handshake)");
ABSL_FLAG(int64_t, queue_max_length, 10000,
          "requests waiting in a service queue at most; past it a call fails at once "
          "(RESOURCE_EXHAUSTED); the same on every service and gateway");
ABSL_FLAG(int, max_deliveries, 3,
          "deliveries of a request that end without an answer (crashed servers) before it is "
          "dead-lettered; the same everywhere");
ABSL_FLAG(absl::Duration, dead_letter_ttl, absl::Hours(24 * 7),
          "how long a dead-lettered request is kept; the same everywhere");
ABSL_FLAG(int64_t, max_message_bytes, static_cast<int64_t>(filemesh::kDefaultMaxMessageBytes),
          "largest request or response message on either transport (services: pages and "
          "searches stop below it); the same on every service and gateway");
ABSL_FLAG(int64_t, dead_letter_max_length, 10000,
          "dead-lettered requests kept per queue, the oldest dropped first; the same everywhere");

namespace filemesh_examples {

absl::StatusOr<size_t> MaxMessageBytesFromFlags() {
  const int64_t bytes = absl::GetFlag(FLAGS_max_message_bytes);
  if (bytes < 4096 || bytes > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_message_bytes must be between 4096 and 2147483647, not ", bytes));
  }
  return static_cast<size_t>(bytes);
}

namespace {

absl::StatusOr<filemesh::QueueLimits> QueueLimitsFromFlags() {
  filemesh::QueueLimits limits;
  limits.max_length = absl::GetFlag(FLAGS_queue_max_length);
  limits.max_deliveries = absl::GetFlag(FLAGS_max_deliveries);
  limits.dead_letter_ttl = absl::GetFlag(FLAGS_dead_letter_ttl);
  limits.dead_letter_max_length = absl::GetFlag(FLAGS_dead_letter_max_length);
  if (limits.max_length < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--queue_max_length must be 1 or more, not ", limits.max_length));
  }
  if (limits.max_deliveries < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_deliveries must be 1 or more, not ", limits.max_deliveries));
  }
  if (limits.dead_letter_ttl < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat("--dead_letter_ttl must be at least 1ms, not ",
                                                   absl::FormatDuration(limits.dead_letter_ttl)));
  }
  if (limits.dead_letter_max_length < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--dead_letter_max_length must be 1 or more, not ", limits.dead_letter_max_length));
  }
  return limits;
}

}  // namespace

absl::StatusOr<filemesh::AmqpOptions> AmqpOptionsFromFlags() {
  filemesh::AmqpOptions amqp;
  amqp.url = absl::GetFlag(FLAGS_amqp_url);
  amqp.tls.ca_file = absl::GetFlag(FLAGS_amqp_ca);
  amqp.tls.cert_file = absl::GetFlag(FLAGS_amqp_tls_cert);
  amqp.tls.key_file = absl::GetFlag(FLAGS_amqp_tls_key);
  amqp.queue_prefix = absl::GetFlag(FLAGS_queue_prefix);
  const std::string quorum = absl::GetFlag(FLAGS_quorum_queues);
  if (quorum == "true") {
    amqp.quorum_queues = true;
  } else if (quorum == "false") {
    amqp.quorum_queues = false;
  } else if (quorum != "auto") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--quorum_queues takes true, false or auto (true for a list of brokers), not \"", quorum,
        "\""));
  }
  amqp.connect_timeout = absl::GetFlag(FLAGS_amqp_connect_timeout);
  if (amqp.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("--amqp_connect_timeout must be positive, not ",
                                                   absl::FormatDuration(amqp.connect_timeout)));
  }
  absl::StatusOr<filemesh::QueueLimits> limits = QueueLimitsFromFlags();
  if (!limits.ok()) return limits.status();
  amqp.queue_limits = *limits;
  return amqp;
}

}  // namespace filemesh_examples
