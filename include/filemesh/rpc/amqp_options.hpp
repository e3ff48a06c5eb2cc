// How a client (FailoverChannelOptions::amqp) or a service
// (ServiceHostOptions::amqp) reaches RabbitMQ, and the bounds of the queues
// it declares (docs/protocol.md).
//
// Clients and services declare the same queues with the same arguments, so
// both sides must use the same queue_prefix, quorum_queues and queue_limits:
// the broker refuses a declaration whose arguments differ from the queue's
// (PRECONDITION_FAILED), and the side that declares second cannot use the
// queue.

#ifndef FILEMESH_RPC_AMQP_OPTIONS_HPP_
#define FILEMESH_RPC_AMQP_OPTIONS_HPP_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "filemesh/service/tls.hpp"

namespace filemesh {

struct QueueLimits {
  // Requests waiting in a service queue at most (x-max-length). Past it the
  // broker refuses new ones (x-overflow: reject-publish) and the call fails
  // at once with RESOURCE_EXHAUSTED instead of being queued.
  int64_t max_length = 10000;
  // Deliveries of one request at most. A request whose delivery ends without
  // an answer (its server crashed, was killed or cut off while holding it)
  // goes back to the queue; after this many it is dead-lettered instead of
  // going to the next replica, and its caller is answered ABORTED.
  int max_deliveries = 3;
  // How long a dead-lettered request is kept in "<queue>.dlq" (x-message-ttl).
  absl::Duration dead_letter_ttl = absl::Hours(24 * 7);
  // Dead-lettered requests kept at most; the oldest go first (x-max-length).
  int64_t dead_letter_max_length = 10000;
};

struct AmqpOptions {
  // "amqp://user:pass@host:port/vhost", or amqps:// for TLS (port 5671 by
  // default; "?auth_mechanism=external" to log in with the client
  // certificate). docs/protocol.md. Empty: no AMQP.
  //
  // A RabbitMQ cluster: its nodes' URLs separated by commas (at most 16,
  // alike but for host and port; a comma in a password is written %2C). The
  // connection goes to the first; when an attempt fails or the connection is
  // lost it goes to the next, with backoff, declares its queues again and
  // sends again what the lost node had not confirmed (docs/deploy.md).
  std::string url;
  // With an amqps:// url (filemesh/service/tls.hpp): ca_file verifies the
  // broker's certificate, which must name the url's host (empty: the
  // system's CAs, /etc/ssl/certs/ca-certificates.crt); cert_file and
  // key_file are the client certificate, when the broker asks for one or the
  // url says auth_mechanism=external. Read anew at every (re)connection.
  TlsOptions tls;
  // Clients: the broker users whose replies are believed. Services stamp each
  // reply with their user (the AMQP user_id property, which RabbitMQ checks
  // against the publishing connection's user), and a reply from anyone else
  // is dropped and counted (ChannelStats::replies_refused). Empty: the
  // client's own user (the url's, or with EXTERNAL its certificate's CN), as
  // when one user serves everything.
  std::vector<std::string> service_users;
  // Prepended to every queue name; the same on both sides.
  std::string queue_prefix;
  // Declare every queue (service, dead-letter and reply queues) as a quorum
  // queue, replicated on the cluster's nodes so that none lives on one node
  // only. Unset: quorum queues when `url` names more than one broker, classic
  // queues for one. The same on both sides.
  std::optional<bool> quorum_queues;
  // Bounds of the service queues; the same on both sides.
  QueueLimits queue_limits;
  // Heartbeat interval asked of the broker (it may lower it); zero disables
  // heartbeats.
  absl::Duration heartbeat = absl::Seconds(10);
  // Bound of the TCP connect and of the AMQP handshake of one attempt.
  absl::Duration connect_timeout = absl::Seconds(5);
};

}  // namespace filemesh

#endif  // FILEMESH_RPC_AMQP_OPTIONS_HPP_
