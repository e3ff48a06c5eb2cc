#include "rest/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/log_internal.h"

namespace filemesh::internal {

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  if (path == "-") return std::unique_ptr<AuditLog>(new AuditLog(STDERR_FILENO, path));
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the audit log \"", path, "\" cannot be opened: ", std::strerror(errno)));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(fd, path));
}

AuditLog::~AuditLog() {
  if (fd_ != STDERR_FILENO) ::close(fd_);
}

void AuditLog::Write(std::initializer_list<LogField> fields) {
  std::string line = FormatLogLine(LogLevel::kInfo, "api_request", fields);
  line.push_back('\n');
  bool failed = false;
  int error = 0;
  {
    MutexLock lock(&mu_);
    std::string_view rest = line;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        failed = true;
        error = errno;
        break;
      }
      rest.remove_prefix(static_cast<size_t>(n));
    }
  }
  if (!failed) return;
  const uint64_t failures = failed_writes_.fetch_add(1) + 1;
  if (failures % 1000 == 1) {
    LogEvent(LogLevel::kError, "audit_write_failed",
             {{"file", path_},
              {"error", std::strerror(error)},
              {"failures_so_far", absl::StrCat(failures)}});
  }
}

}  // namespace filemesh::internal
