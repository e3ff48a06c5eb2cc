// The `filemesh` command-line tool: `filemesh ls` and `filemesh find`.

#ifndef FILEMESH_SRC_CLI_COMMANDS_H_
#define FILEMESH_SRC_CLI_COMMANDS_H_

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace filemesh::cli {

// Exit codes: 0 success (also when the reader of the output went away, as
// with `| head`), 1 the operation failed, 2 bad usage, 130 interrupted.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

struct RunOptions {
  // When it becomes true (main sets it on SIGINT and SIGTERM), a running
  // search stops and Run returns kExitInterrupted.
  const std::atomic<bool>* interrupted = nullptr;
  // A search running this long shows its progress on `err`, when both `out`
  // and `err` are terminals.
  absl::Duration progress_after = absl::Seconds(1);
};

// Runs the tool on `args` (without the program name), writing results to
// `out` and diagnostics to `err`. Returns the exit code.
int Run(const std::vector<std::string>& args, std::FILE* out, std::FILE* err,
        const RunOptions& options = {});

}  // namespace filemesh::cli

#endif  // FILEMESH_SRC_CLI_COMMANDS_H_
