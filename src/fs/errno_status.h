// One mapping from errno to absl::Status for every filesystem operation.

#ifndef FILEMESH_SRC_FS_ERRNO_STATUS_H_
#define FILEMESH_SRC_FS_ERRNO_STATUS_H_

#include <string_view>

#include "absl/status/status.h"

namespace filemesh::internal {

// A printable, quoted form of a path for error messages (C escapes for
// control characters, NULs and bytes that are not UTF-8).
std::string QuotePath(std::string_view path);

// The status for `err` (an errno value) raised by `what` on `path`, e.g.
// ErrnoToStatus(ENOENT, "open", "a/b") is NotFound("open \"a/b\": no such
// file or directory").
absl::Status ErrnoToStatus(int err, std::string_view what, std::string_view path);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_ERRNO_STATUS_H_
