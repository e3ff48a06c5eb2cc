#include "cli/program.h"

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace filemesh::cli {
namespace {

std::atomic<bool> interrupted{false};

void OnInterrupt(int /*signal*/) { interrupted.store(true); }

}  // namespace

int RunProgram(int argc, char** argv, GatewayConnector connect_gateway) {
  // Ctrl-C (and SIGTERM) stop a search cleanly: the walk ends, the progress
  // line is cleared, the exit code is 130.
  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A reader that went away (`| head`) shows up as a failed write (EPIPE),
  // which ends the command quietly with 0, as ls and fd do.
  signal(SIGPIPE, SIG_IGN);
  // Results can be large: write them in big blocks (flushed after each batch
  // of matches, so they still come as they are found).
  static char buffer[1 << 16];
  std::setvbuf(stdout, buffer, _IOFBF, sizeof(buffer));
  const std::vector<std::string> args(argv + 1, argv + argc);
  RunOptions options;
  options.interrupted = &interrupted;
  options.connect_gateway = std::move(connect_gateway);
  const int code = Run(args, stdout, stderr, options);
  if (std::fflush(stdout) != 0 && errno != EPIPE) return kExitFailure;
  return code;
}

}  // namespace filemesh::cli
