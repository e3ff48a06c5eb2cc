#include "rpc/transport_factory.h"

#include "rpc/amqp_transport.h"

namespace filemesh::internal {

absl::StatusOr<std::unique_ptr<Transport>> MakeAmqpTransport(
    const FailoverChannelOptions& options) {
  AmqpClientOptions amqp;
  amqp.url = options.amqp_url;
  amqp.queue_prefix = options.queue_prefix;
  amqp.quorum_queues = options.quorum_queues;
  amqp.queue_limits = options.queue_limits;
  amqp.heartbeat = options.heartbeat;
  amqp.late_reply_ttl = options.late_reply_ttl;
  amqp.late_reply_capacity = options.late_reply_capacity;
  amqp.reconnect_backoff_min = options.reconnect_backoff_min;
  amqp.reconnect_backoff_max = options.reconnect_backoff_max;
  amqp.max_message_bytes = options.max_message_bytes;
  absl::StatusOr<std::unique_ptr<AmqpTransport>> transport = AmqpTransport::Create(amqp);
  if (!transport.ok()) return transport.status();
  return std::unique_ptr<Transport>(*std::move(transport));
}

}  // namespace filemesh::internal
