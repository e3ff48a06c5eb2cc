// FailoverChannel: one call, over gRPC first and over RabbitMQ when gRPC
// cannot deliver it.
//
// Policy, per call:
//  - The primary transport (gRPC) gets one attempt. Its server must
//    acknowledge the call within `attempt_timeout` (filemesh servers send
//    their initial metadata on arrival); once it has, the call waits for the
//    answer until its own deadline, so a slow server is not taken for a dead
//    one. No acknowledgement in time, Unavailable (no connection, or the
//    server stopped answering mid-call, noticed by keepalive pings within
//    2 s) or a channel known to be down sends the same request over the
//    fallback transport (AMQP) with what is left of the call's deadline:
//    List and Search are idempotent. A status the service returned
//    (InvalidArgument, NotFound, PermissionDenied, ...) is returned as it is,
//    never retried, and so is the deadline passing on an acknowledged call.
//    A channel without a fallback gives its primary the whole deadline.
//  - A circuit breaker counts consecutive primary failures. At
//    `breaker_failure_threshold` it opens: calls go straight to the fallback.
//    After a cooldown (doubling while failures go on, up to
//    `breaker_max_cooldown`) one identified probe call tries the primary
//    (half-open); its success closes the breaker, its failure opens it again.
//    Only calls started in the breaker's current state move it; a slow call
//    never counts against it.
//  - When the fallback queued the request (the broker confirmed it) but no
//    reply came in time, the call ends with CallInfo::queued set and an
//    operation id; the reply, when it comes, is kept (bounded, with a TTL)
//    and can be fetched with TakeLateReply.
//
// Thread safety: all methods may be called concurrently; one channel is meant
// to be shared by every caller of a process.
//
// Making a channel changes no process-wide state. Programs that want the
// speed of a loopback call without Abseil's deadlock detection call
// TuneProcessForRpc() (filemesh/rpc/process.hpp) from main().

#ifndef FILEMESH_RPC_FAILOVER_CHANNEL_HPP_
#define FILEMESH_RPC_FAILOVER_CHANNEL_HPP_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/rpc/channel_options.hpp"
#include "filemesh/rpc/failover_policy.hpp"
#include "filemesh/rpc/transport.hpp"

namespace filemesh {

// How a call was served.
struct CallInfo {
  TransportKind served_by = TransportKind::kNone;
  // Transports tried (1 or 2).
  int attempts = 0;
  // The fallback queued the request but its reply has not come yet: the
  // status is DeadlineExceeded and `operation_id` names the pending reply.
  bool queued = false;
  std::string operation_id;
};

struct CallResult {
  absl::StatusOr<std::string> response = absl::UnknownError("not called");
  CallInfo info;
};

// Receives the outcome of one CallAsync, exactly once.
using CallCallback = std::function<void(CallResult)>;

// Counters since the channel was made.
struct ChannelStats {
  uint64_t calls = 0;
  uint64_t served_by_primary = 0;
  uint64_t served_by_fallback = 0;
  uint64_t failovers = 0;  // calls that tried the primary, then the fallback
  uint64_t queued = 0;
  uint64_t breaker_opened = 0;
  // Replies dropped because their sender could not be believed (AMQP: not a
  // service user's; AmqpOptions::service_users).
  uint64_t replies_refused = 0;
  // Late replies dropped before their TTL to stay within
  // late_reply_capacity and late_reply_max_bytes.
  uint64_t late_replies_dropped = 0;
  // Calls the fallback refused at once because its outbox was full
  // (outbox_max_calls, outbox_max_bytes).
  uint64_t outbox_refused = 0;
  // Calls sent again on a new broker connection because the one that
  // carried them was lost before the broker confirmed them.
  uint64_t resent = 0;
  BreakerState breaker = BreakerState::kClosed;
};

class FailoverChannel {
 public:
  // A gRPC primary and an AMQP fallback, as the options say (either may be
  // absent, not both). InvalidArgument for a malformed target or URL. The
  // broker is connected in the background: an unreachable broker is not an
  // error here, only for the calls that need it.
  static absl::StatusOr<std::shared_ptr<FailoverChannel>> Create(
      const FailoverChannelOptions& options);

  // Any two transports (either may be null, not both); for custom transports
  // and for tests.
  FailoverChannel(std::unique_ptr<Transport> primary, std::unique_ptr<Transport> fallback,
                  FailoverPolicy policy);
  ~FailoverChannel();

  FailoverChannel(const FailoverChannel&) = delete;
  FailoverChannel& operator=(const FailoverChannel&) = delete;

  // One call of `method` with the serialized `request`, as the policy above
  // says, without waiting: `done` gets the outcome exactly once, by
  // `deadline` at the latest. It runs on a transport's thread (or on the
  // caller's, before CallAsync returns, when the outcome is known at once,
  // e.g. no transport can deliver); it must not block and may start new
  // calls. No thread waits on the call meanwhile. Destroying the channel
  // answers every pending call (Unavailable) before the destructor returns.
  void CallAsync(const std::string& method, const std::string& request, absl::Time deadline,
                 CallCallback done);

  // The blocking form of CallAsync: returns its outcome, by `deadline` at most.
  CallResult Call(const std::string& method, const std::string& request, absl::Time deadline);

  // The reply of a call that ended queued (see CallInfo::operation_id).
  LateReply TakeLateReply(const std::string& operation_id);

  // Tells `listener` of the reply of each call that ended queued, when it
  // arrives (Transport::SetLateReplyListener: after the call's callback
  // returned, on a transport thread; true takes the reply, false leaves it
  // for TakeLateReply). Null: none. One listener per channel; setting one
  // replaces the one before, which is no longer running when this returns.
  // const: a listener is not part of the calls' state, and RestGateway,
  // which receives its backends as const, sets one on their channels.
  void SetLateReplyListener(const LateReplyListener& listener) const;

  BreakerState breaker_state() const;
  ChannelStats stats() const;

  // Whether each transport may deliver right now: it exists and is not known
  // to be unable to (and, for the primary, the breaker is not open).
  bool primary_available() const;
  bool fallback_available() const;

  // Whether the channel was made with each transport (for readiness reports).
  bool has_primary() const;
  bool has_fallback() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh

#endif  // FILEMESH_RPC_FAILOVER_CHANNEL_HPP_
