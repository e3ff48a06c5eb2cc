#ifndef FILEMESH_SRC_SERVICE_LOG_INTERNAL_H_
#define FILEMESH_SRC_SERVICE_LOG_INTERNAL_H_

#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "filemesh/service/log.hpp"

namespace filemesh::internal {

// Appends `time` in UTC as LogEvent's ts= value: 2026-11-27T03:45:12.345Z
// (milliseconds truncated, as absl's %E3S does).
void AppendLogTimestamp(absl::Time time, std::string* out);

// The line LogEvent writes, without its newline: for logs of their own
// (the gateway's audit trail) in the same shape and with the same escapes.
std::string FormatLogLine(LogLevel level, std::string_view event,
                          std::initializer_list<LogField> fields);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_SERVICE_LOG_INTERNAL_H_
