// AmqpTransport: unary calls over RabbitMQ, per docs/protocol.md.
//
// A request is published (persistent, mandatory, with publisher confirms) to
// the service's queue; the reply comes back on one reply queue per transport,
// which outlives reconnects. Every caller shares one connection and its one
// I/O thread, which only moves frames: replies are read and callbacks run on
// `callback_threads` threads of the transport. A call whose request the
// broker confirmed but whose reply did not come by the deadline ends with
// DeadlineExceeded and a `queued_id`; the reply is kept when it comes
// (bounded, with a TTL) for TakeLateReply.
//
// A broker cluster (AmqpOptions::url lists its nodes): when the connection
// is lost it goes to the next node, declares the queues again and sends once
// more the calls the lost node had not confirmed (resent()); calls made
// meanwhile wait in the outbox until a node takes them or every node has
// failed once. With quorum queues (the default for a cluster) requests and
// replies the broker confirmed outlive the node.
//
// On a bad day: calls not yet confirmed by the broker are bounded
// (outbox_max_calls, outbox_max_bytes: past them ResourceExhausted at once),
// one whose deadline passes before it was sent leaves the outbox then, and
// while the broker blocks publishing (connection.blocked, a resource alarm)
// calls fail at once with Unavailable and KnownUnavailable() is true.
//
// Thread safety: every method may be called from any number of threads.

#ifndef FILEMESH_SRC_RPC_AMQP_TRANSPORT_H_
#define FILEMESH_SRC_RPC_AMQP_TRANSPORT_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/rpc/channel_options.hpp"
#include "filemesh/rpc/transport.hpp"

namespace filemesh::internal {

class AmqpTransport : public Transport {
 public:
  // From a channel's options: `amqp` (an empty url is InvalidArgument here),
  // the late replies' bounds, the outbox bounds, callback_threads, the
  // reconnect backoff and the message size. InvalidArgument for a malformed
  // URL or option. The broker is
  // connected in the background: an unreachable broker is not an error here.
  static absl::StatusOr<std::unique_ptr<AmqpTransport>> Create(
      const FailoverChannelOptions& options);
  ~AmqpTransport() override;

  TransportKind kind() const override { return TransportKind::kAmqp; }

  // InvalidArgument for a malformed method name; Unavailable at once when the
  // broker is not connected or blocks publishing, when the broker refuses or
  // returns the request (no queue took it) or when the connection drops (or
  // the broker blocks) before the broker confirmed it; ResourceExhausted at
  // once when the outbox is full; DeadlineExceeded with `queued_id` when it
  // was confirmed but no reply came in time. Otherwise the service's reply,
  // status included. `done` runs on a callback thread (or on the caller's
  // when the outcome is known at once). Calls made before the first connection attempt has ended
  // wait for it (within their deadline) instead of failing. The accept deadline is not used: the
  // broker, not the server, confirms.
  void CallAsync(const std::string& method, const std::string& request, const CallOptions& options,
                 TransportCallback done) override;

  // True while the broker connection is down or blocked.
  bool KnownUnavailable() const override;

  LateReply TakeLateReply(const std::string& queued_id) override;
  void SetLateReplyListener(const LateReplyListener& listener) override;

  // Replies dropped because their user_id is not a service user's
  // (AmqpOptions::service_users): forged or misdirected.
  uint64_t replies_refused() const override;
  uint64_t late_replies_dropped() const override;
  uint64_t outbox_refused() const override;
  uint64_t resent() const override;
  // Replies taken from the orphan queue for other clients' calls
  // (share_orphan_replies), whether the listener took them or not.
  uint64_t orphan_replies() const;

  // Whether the connection is up (the opposite of KnownUnavailable).
  bool Connected() const;
  // This transport's reply queue (prefix + "filemesh.reply." + random id).
  const std::string& reply_queue() const;

 private:
  class Core;
  explicit AmqpTransport(std::unique_ptr<Core> core);
  std::unique_ptr<Core> core_;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_AMQP_TRANSPORT_H_
