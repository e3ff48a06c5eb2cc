// What the `filemesh` program and its `filemesh-remote` helper do around
// Run(): signals, output buffering, exit codes.

#ifndef FILEMESH_SRC_CLI_PROGRAM_H_
#define FILEMESH_SRC_CLI_PROGRAM_H_

#include "cli/commands.h"

namespace filemesh::cli {

// Runs the command line `argv` with remote mode served by `connect_gateway`.
int RunProgram(int argc, char** argv, GatewayConnector connect_gateway);

}  // namespace filemesh::cli

#endif  // FILEMESH_SRC_CLI_PROGRAM_H_
