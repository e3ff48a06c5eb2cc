// FailoverChannelOptions: what FailoverChannel::Create builds its transports
// from (failover_channel.hpp). A header of its own so that the transports
// take these options without the channel.

#ifndef FILEMESH_RPC_CHANNEL_OPTIONS_HPP_
#define FILEMESH_RPC_CHANNEL_OPTIONS_HPP_

#include <cstddef>
#include <string>

#include "absl/time/time.h"
#include "filemesh/rpc/amqp_options.hpp"
#include "filemesh/rpc/failover_policy.hpp"
#include "filemesh/rpc/transport.hpp"
#include "filemesh/service/tls.hpp"

namespace filemesh {

struct FailoverChannelOptions {
  // gRPC target, e.g. "127.0.0.1:50051" or "ipv4:127.0.0.1:1,127.0.0.1:2"
  // (several targets are spread with round_robin). Empty: no gRPC.
  std::string grpc_target;
  // TLS toward the gRPC servers (filemesh/service/tls.hpp): ca_file to verify
  // them (empty: the system's CAs), cert_file and key_file when they ask for
  // a client certificate, server_name when their certificates do not name
  // the target's host. Not enabled(): plain text.
  TlsOptions grpc_tls;
  // The RabbitMQ side (amqp_options.hpp); an empty url: no AMQP.
  AmqpOptions amqp;
  // How long a queued request stays worth serving (the AMQP `expiration`)
  // and how long a late reply is kept for TakeLateReply.
  absl::Duration late_reply_ttl = absl::Minutes(10);
  // Most late replies kept at once; the oldest is dropped past it.
  size_t late_reply_capacity = 10000;
  // Bytes the kept late replies' answers may hold together (at least 1);
  // past it the oldest are dropped (an answer bigger than this is not kept).
  // Drops by either bound count in ChannelStats::late_replies_dropped.
  size_t late_reply_max_bytes = size_t{256} << 20;
  // Replies that reach this client's reply queue while nobody reads it (the
  // client was killed, or restarted under a new id) move, once they have
  // waited `orphan_reply_after` there, to the queue
  // `<queue_prefix>filemesh.reply.orphans` (dead-lettering), which every
  // client with this option reads: its late-reply listener
  // (FailoverChannel::SetLateReplyListener) gets them as it gets the client's
  // own late replies. For gateway replicas that share an operations
  // database: whichever takes a reply writes it. Off: a reply nobody reads
  // is lost with its queue. orphan_reply_after: at least 100 ms; a reply its
  // live client has not taken within it moves too (and comes back to it
  // through the shared queue, or goes to another client's listener).
  bool share_orphan_replies = false;
  absl::Duration orphan_reply_after = absl::Seconds(10);
  // AMQP calls the broker has not confirmed yet (waiting to be sent, or sent
  // and unconfirmed), at most, and the bytes of their requests together (at
  // least 1 each). Past either a new call fails at once with
  // RESOURCE_EXHAUSTED (ChannelStats::outbox_refused), so a broker that stops
  // reading cannot make the client hoard requests. A call whose deadline
  // passes while it waits leaves the outbox at once.
  size_t outbox_max_calls = 10000;
  size_t outbox_max_bytes = size_t{64} << 20;
  // Threads that read AMQP replies (ReplyOutcome) and run the calls'
  // callbacks (where clients parse the protobuf and the gateway writes
  // JSON), so that the connection's one I/O thread only moves frames. 1 to
  // 64. When all are busy and their queue (outbox_max_calls) is full, the
  // I/O thread runs a callback itself, which slows reading: backpressure.
  int callback_threads = 2;
  // Bounds of the exponential, jittered backoff between broker reconnects
  // and of gRPC's own reconnect backoff (which is also kept at or below the
  // breaker cooldown, so a probe finds a server that came back).
  absl::Duration reconnect_backoff_min = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(5);
  // Largest request and response message, serialized, on both transports; a
  // larger one is RESOURCE_EXHAUSTED (never a failover). Match the services'.
  // 1 to 2^31 - 1.
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  FailoverPolicy policy;
};

}  // namespace filemesh

#endif  // FILEMESH_RPC_CHANNEL_OPTIONS_HPP_
