// The filemesh AMQP envelope (docs/protocol.md): queue names and arguments,
// message properties, and how a status travels in reply headers. Shared by
// AmqpTransport and AmqpServer so both sides speak exactly the same thing.

#ifndef FILEMESH_SRC_RPC_AMQP_ENVELOPE_H_
#define FILEMESH_SRC_RPC_AMQP_ENVELOPE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/rpc/amqp_options.hpp"
#include "rpc/amqp_connection.h"

namespace filemesh::internal {

inline constexpr char kDeadLetterExchange[] = "filemesh.dlx";
inline constexpr char kContentType[] = "application/x-protobuf";
inline constexpr char kStatusHeader[] = "grpc-status";
inline constexpr char kMessageHeader[] = "grpc-message";
// Request header, set by servers on the copy of a request they put back in
// its queue: deliveries of it that ended without an answer so far.
inline constexpr char kRedeliveriesHeader[] = "filemesh-redeliveries";
// Request header: how long the server may run the call, in whole
// milliseconds from when it starts (docs/protocol.md).
inline constexpr char kTimeoutHeader[] = "filemesh-timeout-ms";
inline constexpr char kReplyQueueInfix[] = "filemesh.reply.";
// After the queue prefix: the queue where replies nobody read move
// (FailoverChannelOptions::share_orphan_replies).
inline constexpr char kOrphanReplyQueue[] = "filemesh.reply.orphans";
// AMQP short strings (queue names, `type`, `correlation_id`) hold 255 bytes;
// "<queue>.dlq" must fit too.
inline constexpr size_t kMaxShortString = 255;
inline constexpr size_t kMaxServiceQueueName = kMaxShortString - 4;

// A service's queue: durable, dead-lettering to filemesh.dlx with routing key
// "<queue>.dlq", at most limits.max_length requests (x-overflow
// reject-publish), a quorum queue when asked (then with x-delivery-limit).
// Whether the queues are quorum queues: AmqpOptions::quorum_queues, or
// when it is unset, whether the URL list names more than one broker.
bool UsesQuorumQueues(const AmqpOptions& amqp, size_t broker_count);

AmqpQueueSpec ServiceQueueSpec(const std::string& queue, bool quorum, const QueueLimits& limits);

// Its dead-letter queue "<queue>.dlq": durable, with the TTL and length limit
// of `limits`.
AmqpQueueSpec DeadLetterQueueSpec(const std::string& queue, bool quorum, const QueueLimits& limits);

// Declares filemesh.dlx (direct, durable), "<queue>.dlq" bound to it with
// routing key "<queue>.dlq", then `queue` itself.
absl::Status DeclareServiceQueue(AmqpConnection& connection, const std::string& queue, bool quorum,
                                 const QueueLimits& limits);

// InvalidArgument unless every bound of `limits` is positive.
absl::Status CheckQueueLimits(const QueueLimits& limits);

// Whether `status` says the request itself is malformed (ServiceHost marks an
// unparseable body so): such a request is answered and dead-lettered.
bool IsUnparseableRequest(const absl::Status& status);

// Reply headers for `status`: grpc-status (the absl/gRPC code number) and,
// when not OK, grpc-message.
AmqpTable StatusHeaders(const absl::Status& status);

// The outcome a reply carries: the body (moved out) when grpc-status is 0,
// else that status with grpc-message. A reply without a usable grpc-status is
// Internal.
absl::StatusOr<std::string> ReplyOutcome(AmqpMessage reply);

// Whole milliseconds of `d`, at least 1, as AMQP's `expiration` wants them.
std::string ExpirationMillis(absl::Duration d);

// The `expiration` property as a duration; false if absent or malformed.
bool ParseExpiration(std::string_view expiration, absl::Duration* out);

// The run-time budget a request's headers give (kTimeoutHeader, a positive
// integer of any AMQP integer type); false if absent or malformed.
bool ParseTimeoutHeader(const AmqpTable& headers, absl::Duration* out);

// The options that client and server share: a heartbeat that is not
// negative, a positive connect timeout, 0 < reconnect_backoff_min <=
// reconnect_backoff_max, and positive queue limits.
absl::Status CheckEndpointOptions(const AmqpOptions& amqp, absl::Duration backoff_min,
                                  absl::Duration backoff_max);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_AMQP_ENVELOPE_H_
