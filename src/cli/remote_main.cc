// `filemesh-remote`: the `filemesh` command with remote mode, run by it for
// --gateway (installed in the prefix's libexec directory, out of PATH).

#include "cli/program.h"
#include "cli/remote.h"

int main(int argc, char** argv) {
  return filemesh::cli::RunProgram(argc, argv, filemesh::cli::GatewayClient::Connect);
}
