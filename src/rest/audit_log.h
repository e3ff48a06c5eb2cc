// The gateway's audit trail: one line per API request, in LogEvent's shape
// (`ts=... level=info event=api_request request_id=... key=...`), to a file
// of its own or to stderr, apart from the operational log.

#ifndef FILEMESH_SRC_REST_AUDIT_LOG_H_
#define FILEMESH_SRC_REST_AUDIT_LOG_H_

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/service/log.hpp"

namespace filemesh::internal {

class AuditLog {
 public:
  // "-" is stderr; any other name a file opened for appending (made with
  // mode 0640 when missing). InvalidArgument when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Writes one event=api_request line with `fields`, whole (one write(2) on
  // an O_APPEND file). A failed write is counted and logged (the first and
  // every 1000th), never thrown.
  void Write(std::initializer_list<LogField> fields);

 private:
  AuditLog(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  const int fd_;
  const std::string path_;
  Mutex mu_;  // lines from many threads stay whole and in order
  std::atomic<uint64_t> failed_writes_{0};
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_AUDIT_LOG_H_
