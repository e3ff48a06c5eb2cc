// The `filemesh` command-line tool: `filemesh ls` and `filemesh find`.

#ifndef FILEMESH_SRC_CLI_COMMANDS_H_
#define FILEMESH_SRC_CLI_COMMANDS_H_

#include <cstdio>
#include <string>
#include <vector>

namespace filemesh::cli {

// Exit codes: 0 success, 1 the operation failed, 2 bad usage.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Runs the tool on `args` (without the program name), writing results to
// `out` and diagnostics to `err`. Returns the exit code.
int Run(const std::vector<std::string>& args, std::FILE* out, std::FILE* err);

}  // namespace filemesh::cli

#endif  // FILEMESH_SRC_CLI_COMMANDS_H_
