// The RabbitMQ queue bounds (filemesh::QueueLimits) as flags, shared by the
// services and the gateway: every side declares the same queues, so the
// values must be the same everywhere. Each also from FILEMESH_<NAME>.

#ifndef FILEMESH_EXAMPLES_COMMON_QUEUE_FLAGS_H_
#define FILEMESH_EXAMPLES_COMMON_QUEUE_FLAGS_H_

#include "absl/status/statusor.h"
#include "filemesh/queue_limits.hpp"

namespace filemesh_examples {

// --queue_max_length, --max_deliveries, --dead_letter_ttl and
// --dead_letter_max_length; InvalidArgument, naming the flag, for a value
// that is not positive.
absl::StatusOr<filemesh::QueueLimits> QueueLimitsFromFlags();

}  // namespace filemesh_examples

#endif  // FILEMESH_EXAMPLES_COMMON_QUEUE_FLAGS_H_
