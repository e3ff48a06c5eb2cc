#include "rpc/amqp_envelope.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <variant>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/absl_compat.h"
#include "filemesh/rpc/methods.hpp"
#include "rpc/amqp_url.h"
#include "service/tls_files.h"

namespace filemesh::internal {

bool UsesQuorumQueues(const AmqpOptions& amqp, size_t broker_count) {
  return amqp.quorum_queues.value_or(broker_count > 1);
}

AmqpQueueSpec ServiceQueueSpec(const std::string& queue, bool quorum, const QueueLimits& limits) {
  AmqpQueueSpec spec;
  spec.name = queue;
  spec.durable = true;
  spec.arguments["x-dead-letter-exchange"] = std::string(kDeadLetterExchange);
  spec.arguments["x-dead-letter-routing-key"] = queue + ".dlq";
  spec.arguments["x-max-length"] = limits.max_length;
  spec.arguments["x-overflow"] = std::string("reject-publish");
  if (quorum) {
    spec.arguments["x-queue-type"] = std::string("quorum");
    // The broker counts deliveries of quorum queues itself.
    spec.arguments["x-delivery-limit"] = static_cast<int64_t>(limits.max_deliveries);
  }
  return spec;
}

AmqpQueueSpec DeadLetterQueueSpec(const std::string& queue, bool quorum,
                                  const QueueLimits& limits) {
  AmqpQueueSpec dlq;
  dlq.name = queue + ".dlq";
  dlq.durable = true;
  dlq.arguments["x-message-ttl"] =
      std::max<int64_t>(1, absl::ToInt64Milliseconds(limits.dead_letter_ttl));
  dlq.arguments["x-max-length"] = limits.dead_letter_max_length;
  if (quorum) dlq.arguments["x-queue-type"] = std::string("quorum");
  return dlq;
}

absl::Status DeclareServiceQueue(AmqpConnection& connection, const std::string& queue, bool quorum,
                                 const QueueLimits& limits) {
  absl::Status status = connection.DeclareExchange(kDeadLetterExchange, "direct", true);
  if (!status.ok()) return status;
  const AmqpQueueSpec dlq = DeadLetterQueueSpec(queue, quorum, limits);
  status = connection.DeclareQueue(dlq);
  if (!status.ok()) return status;
  status = connection.BindQueue(dlq.name, kDeadLetterExchange, dlq.name);
  if (!status.ok()) return status;
  return connection.DeclareQueue(ServiceQueueSpec(queue, quorum, limits));
}

absl::Status CheckQueueLimits(const QueueLimits& limits) {
  if (limits.max_length < 1)
    return absl::InvalidArgumentError("queue max_length must be at least 1");
  if (limits.max_deliveries < 1) {
    return absl::InvalidArgumentError("queue max_deliveries must be at least 1");
  }
  if (limits.dead_letter_ttl < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("dead_letter_ttl must be at least 1 ms");
  }
  if (limits.dead_letter_max_length < 1) {
    return absl::InvalidArgumentError("dead_letter_max_length must be at least 1");
  }
  return absl::OkStatus();
}

bool IsUnparseableRequest(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument &&
         status.GetPayload(kUnparseableRequestPayload).has_value();
}

AmqpTable StatusHeaders(const absl::Status& status) {
  AmqpTable headers;
  headers[std::string(kStatusHeader)] = static_cast<int64_t>(status.code());
  if (!status.ok()) headers[std::string(kMessageHeader)] = std::string(status.message());
  return headers;
}

absl::StatusOr<std::string> ReplyOutcome(AmqpMessage reply) {
  const AmqpTable& headers = reply.properties.headers;
  auto it = headers.find(std::string(kStatusHeader));
  if (it == headers.end()) return absl::InternalError("AMQP reply without a grpc-status header");
  int64_t code = -1;
  if (const auto* number = std::get_if<int64_t>(&it->second)) {
    code = *number;
  } else if (!absl::SimpleAtoi(AbslView(std::get<std::string>(it->second)), &code)) {
    return absl::InternalError("AMQP reply with a non-numeric grpc-status header");
  }
  if (code == 0) return std::move(reply.body);
  std::string message;
  auto m = headers.find(std::string(kMessageHeader));
  if (m != headers.end()) {
    if (const auto* text = std::get_if<std::string>(&m->second)) message = *text;
  }
  if (code < 1 || code > 16) {
    return absl::UnknownError(absl::StrCat("grpc-status ", code, ": ", message));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

std::string ExpirationMillis(absl::Duration d) {
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

namespace {

// The TLS options against the URL's scheme and auth mechanism, then the
// files themselves.
absl::Status CheckAmqpTls(const AmqpOptions& amqp) {
  absl::StatusOr<std::vector<AmqpUrl>> urls = ParseAmqpUrls(amqp.url);
  if (!urls.ok()) return urls.status();
  const AmqpUrl* url = &urls->front();  // all alike (ParseAmqpUrls)
  if (!url->tls) {
    if (amqp.tls.enabled()) {
      return absl::InvalidArgumentError(
          "TLS files are given for a plain amqp:// URL: use amqps:// to connect over TLS");
    }
    return absl::OkStatus();
  }
  if (url->external_auth && amqp.tls.cert_file.empty()) {
    return absl::InvalidArgumentError(
        "auth_mechanism=external logs in with the client certificate: give one (and its key)");
  }
  if (!amqp.tls.allowed_peers.empty()) {
    return absl::InvalidArgumentError(
        "allowed peers are for servers; the broker is checked by its CA and host name");
  }
  return CheckTlsOptions(amqp.tls, TlsRole::kClient);
}

}  // namespace

absl::Status CheckEndpointOptions(const AmqpOptions& amqp, absl::Duration backoff_min,
                                  absl::Duration backoff_max) {
  if (amqp.heartbeat < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("heartbeat must not be negative");
  }
  if (amqp.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("connect_timeout must be positive");
  }
  if (backoff_min <= absl::ZeroDuration() || backoff_max < backoff_min) {
    return absl::InvalidArgumentError(
        "reconnect backoff: want 0 < reconnect_backoff_min <= reconnect_backoff_max");
  }
  if (absl::Status tls = CheckAmqpTls(amqp); !tls.ok()) return tls;
  return CheckQueueLimits(amqp.queue_limits);
}

bool ParseTimeoutHeader(const AmqpTable& headers, absl::Duration* out) {
  auto it = headers.find(std::string(kTimeoutHeader));
  if (it == headers.end()) return false;
  const int64_t* ms = std::get_if<int64_t>(&it->second);
  if (ms == nullptr || *ms <= 0) return false;
  *out = absl::Milliseconds(std::min<int64_t>(*ms, INT64_MAX / 2));
  return true;
}

bool ParseExpiration(std::string_view expiration, absl::Duration* out) {
  uint64_t ms = 0;
  if (expiration.empty() || !absl::SimpleAtoi(AbslView(expiration), &ms)) return false;
  *out = absl::Milliseconds(static_cast<int64_t>(std::min<uint64_t>(ms, INT64_MAX / 2)));
  return true;
}

}  // namespace filemesh::internal
