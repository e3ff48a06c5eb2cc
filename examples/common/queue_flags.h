// What the services and the gateway must agree on, as flags shared by them:
// the broker and its queues (filemesh::AmqpOptions: every side declares the
// same queues with the same bounds) and the largest message
// (--max_message_bytes). Each also from FILEMESH_<NAME>.

#ifndef FILEMESH_EXAMPLES_COMMON_QUEUE_FLAGS_H_
#define FILEMESH_EXAMPLES_COMMON_QUEUE_FLAGS_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "filemesh/rpc/amqp_options.hpp"

namespace filemesh_examples {

// --amqp_url, --amqp_ca, --amqp_tls_cert, --amqp_tls_key (AmqpOptions::tls),
// --queue_prefix, --amqp_connect_timeout and the queue bounds
// (--queue_max_length, --max_deliveries, --dead_letter_ttl,
// --dead_letter_max_length); InvalidArgument, naming the flag, for a bound or
// timeout that is not positive.
absl::StatusOr<filemesh::AmqpOptions> AmqpOptionsFromFlags();

// --max_message_bytes: InvalidArgument outside 4096 .. 2^31 - 1.
absl::StatusOr<size_t> MaxMessageBytesFromFlags();

}  // namespace filemesh_examples

#endif  // FILEMESH_EXAMPLES_COMMON_QUEUE_FLAGS_H_
