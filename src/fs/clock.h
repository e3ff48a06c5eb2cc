// The clock the search walk reads its deadline against. Tests replace it to
// make deadline behaviour deterministic; production code never does.

#ifndef FILEMESH_SRC_FS_CLOCK_H_
#define FILEMESH_SRC_FS_CLOCK_H_

#include "absl/time/time.h"

namespace filemesh::internal {

using NowFunction = absl::Time (*)();

// absl::Now unless a test installed another function.
absl::Time SearchNow();

// Installs `now` (nullptr restores absl::Now). Not for production use.
void SetSearchClockForTesting(NowFunction now);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_CLOCK_H_
