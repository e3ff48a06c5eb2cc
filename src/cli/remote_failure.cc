#include "cli/remote_failure.h"

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace filemesh::cli {
namespace {

constexpr char kExitPayload[] = "type.filemesh.dev/cli.exit";

}  // namespace

absl::Status RemoteFailureStatus(absl::StatusCode code, const std::string& line, int exit_code) {
  absl::Status status(code, line);
  status.SetPayload(kExitPayload, absl::Cord(absl::StrCat(exit_code)));
  return status;
}

RemoteFailure RemoteFailureOf(const absl::Status& status) {
  RemoteFailure failure;
  failure.line = std::string(status.message());
  if (const auto payload = status.GetPayload(kExitPayload); payload.has_value()) {
    int code = 1;
    if (absl::SimpleAtoi(std::string(*payload), &code)) failure.exit_code = code;
  }
  return failure;
}

}  // namespace filemesh::cli
