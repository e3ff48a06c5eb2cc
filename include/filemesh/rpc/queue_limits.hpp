// Bounds of the RabbitMQ queues filemesh declares (docs/protocol.md).
//
// Clients (FailoverChannelOptions) and services (ServiceHostOptions) declare
// the same queues with the same arguments, so both sides must use the same
// values: the broker refuses a declaration whose arguments differ from the
// queue's (PRECONDITION_FAILED), and the side that declares second cannot
// use the queue.

#ifndef FILEMESH_RPC_QUEUE_LIMITS_HPP_
#define FILEMESH_RPC_QUEUE_LIMITS_HPP_

#include <cstdint>

#include "absl/time/time.h"

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

}  // namespace filemesh

#endif  // FILEMESH_RPC_QUEUE_LIMITS_HPP_
