#include "rpc/process_tuning.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "absl/synchronization/mutex.h"

namespace filemesh::internal {

void ApplyProcessTuning() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* keep = std::getenv("FILEMESH_ABSL_DEADLOCK_DETECTION");
    if (keep == nullptr || std::strcmp(keep, "1") != 0) {
      absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    }
  });
}

}  // namespace filemesh::internal
