// The limits the services and the gateway must agree on, as flags shared by
// them: the RabbitMQ queue bounds (filemesh::QueueLimits; every side declares
// the same queues) and the largest message (--max_message_bytes). Each also
// from FILEMESH_<NAME>.

#ifndef FILEMESH_EXAMPLES_COMMON_QUEUE_FLAGS_H_
#define FILEMESH_EXAMPLES_COMMON_QUEUE_FLAGS_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "filemesh/rpc/amqp_options.hpp"

namespace filemesh_examples {

// --queue_max_length, --max_deliveries, --dead_letter_ttl and
// --dead_letter_max_length; InvalidArgument, naming the flag, for a value
// that is not positive.
absl::StatusOr<filemesh::QueueLimits> QueueLimitsFromFlags();

// --max_message_bytes: InvalidArgument outside 4096 .. 2^31 - 1.
absl::StatusOr<size_t> MaxMessageBytesFromFlags();

}  // namespace filemesh_examples

#endif  // FILEMESH_EXAMPLES_COMMON_QUEUE_FLAGS_H_
