// Process-wide settings the rpc component needs for its speed.

#ifndef FILEMESH_SRC_RPC_PROCESS_TUNING_H_
#define FILEMESH_SRC_RPC_PROCESS_TUNING_H_

namespace filemesh::internal {

// Once per process: Debian's Abseil is built without NDEBUG, which leaves
// absl::Mutex deadlock detection on (a global lock-order graph updated on
// every Lock, gRPC's own mutexes included); it costs about a third of a
// loopback gRPC round trip. It is turned off unless the environment sets
// FILEMESH_ABSL_DEADLOCK_DETECTION=1 (for debugging lock order).
void ApplyProcessTuning();

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_PROCESS_TUNING_H_
