#include "fs/errno_status.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/absl_compat.h"

namespace filemesh::internal {

std::string QuotePath(std::string_view path) {
  // CHexEscape keeps printable ASCII and escapes everything else, so the
  // message is safe to log and to carry in a protobuf string or HTTP header.
  return absl::StrCat("\"", absl::CHexEscape(AbslView(path)), "\"");
}

absl::Status ErrnoToStatus(int err, std::string_view what, std::string_view path) {
  std::string message = absl::StrCat(AbslView(what), " ", QuotePath(path), ": ");
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(absl::StrCat(message, "no such file or directory"));
    case ENOTDIR:
      return absl::FailedPreconditionError(absl::StrCat(message, "not a directory"));
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(absl::StrCat(message, "permission denied"));
    case EXDEV:
      return absl::PermissionDeniedError(absl::StrCat(message, "resolves outside the root"));
    case ELOOP:
      return absl::FailedPreconditionError(
          absl::StrCat(message, "too many levels of symbolic links"));
    case ENAMETOOLONG:
      return absl::InvalidArgumentError(absl::StrCat(message, "name too long"));
    case EMFILE:
      return absl::ResourceExhaustedError(
          absl::StrCat(message,
                       "too many open files (the process's descriptor limit, RLIMIT_NOFILE, is "
                       "reached)"));
    case ENFILE:
      return absl::ResourceExhaustedError(
          absl::StrCat(message,
                       "too many open files in the system (the system-wide limit, fs.file-max, is "
                       "reached)"));
    case ENOMEM:
      return absl::ResourceExhaustedError(absl::StrCat(message, std::strerror(err)));
    case EINTR:
    case EAGAIN:
      return absl::UnavailableError(absl::StrCat(message, std::strerror(err)));
    default:
      return absl::InternalError(absl::StrCat(message, std::strerror(err)));
  }
}

}  // namespace filemesh::internal
