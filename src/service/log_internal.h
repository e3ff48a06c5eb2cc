#ifndef FILEMESH_SRC_SERVICE_LOG_INTERNAL_H_
#define FILEMESH_SRC_SERVICE_LOG_INTERNAL_H_

#include <string>

#include "absl/time/time.h"

namespace filemesh::internal {

// Appends `time` in UTC as LogEvent's ts= value: 2026-11-27T03:45:12.345Z
// (milliseconds truncated, as absl's %E3S does).
void AppendLogTimestamp(absl::Time time, std::string* out);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_SERVICE_LOG_INTERNAL_H_
