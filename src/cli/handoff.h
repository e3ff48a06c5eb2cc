// Remote mode of the `filemesh` program: the command is handed over whole to
// the `filemesh-remote` helper, which links the HTTP client and OpenSSL, so a
// local `ls` or `find` never loads them (they were most of its start-up time).

#ifndef FILEMESH_SRC_CLI_HANDOFF_H_
#define FILEMESH_SRC_CLI_HANDOFF_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/commands.h"

namespace filemesh::cli {

// Remembers the program's command line (main's argv, which must stay valid).
void SetHandOffArguments(char** argv);

// Where the helper is: beside this program (a build tree), else in the
// prefix's libexec directory (../libexec from bin/ with the usual layout).
// Empty when neither exists.
std::string RemoteHelperPath();

// A GatewayConnector that replaces this process with the helper, run with the
// same command line; it returns only when that fails (Unavailable, saying
// where the helper was looked for).
absl::StatusOr<std::unique_ptr<RemoteGateway>> HandOffToRemote(const GatewayOptions& options);

}  // namespace filemesh::cli

#endif  // FILEMESH_SRC_CLI_HANDOFF_H_
