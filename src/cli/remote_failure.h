// How remote mode's failures travel to the command's report: the one line
// for stderr ("filemesh: <title>: <detail>") and the exit code, carried in an
// absl::Status (its message and a payload).

#ifndef FILEMESH_SRC_CLI_REMOTE_FAILURE_H_
#define FILEMESH_SRC_CLI_REMOTE_FAILURE_H_

#include <string>

#include "absl/status/status.h"

namespace filemesh::cli {

// Exit codes of failures only remote mode has (docs/cli.md).
constexpr int kExitUnauthorized = 3;  // 401: no API key, or a wrong one
constexpr int kExitUnreachable = 4;   // no answer, or not a filemesh gateway

struct RemoteFailure {
  std::string line;
  int exit_code = 1;
};

// A status with `code` whose report is `line` and `exit_code`.
absl::Status RemoteFailureStatus(absl::StatusCode code, const std::string& line, int exit_code);

// The report of a status from remote mode (exit code 1 when it names none).
RemoteFailure RemoteFailureOf(const absl::Status& status);

}  // namespace filemesh::cli

#endif  // FILEMESH_SRC_CLI_REMOTE_FAILURE_H_
