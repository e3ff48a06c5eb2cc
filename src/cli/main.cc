#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"

int main(int argc, char** argv) {
  // Results can be large: write them in big blocks.
  static char buffer[1 << 16];
  std::setvbuf(stdout, buffer, _IOFBF, sizeof(buffer));
  const std::vector<std::string> args(argv + 1, argv + argc);
  const int code = filemesh::cli::Run(args, stdout, stderr);
  if (std::fflush(stdout) != 0) return filemesh::cli::kExitFailure;
  return code;
}
