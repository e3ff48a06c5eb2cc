#include "filemesh/rpc/process.hpp"

#include <grpcpp/ext/proto_server_reflection_plugin.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "absl/synchronization/mutex.h"

namespace filemesh {

void EnableGrpcReflection() {
  static std::once_flag once;
  std::call_once(once, [] { grpc::reflection::InitProtoReflectionServerBuilderPlugin(); });
}

void TuneProcessForRpc() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* keep = std::getenv("FILEMESH_ABSL_DEADLOCK_DETECTION");
    if (keep == nullptr || std::strcmp(keep, "1") != 0) {
      absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    }
  });
}

}  // namespace filemesh
