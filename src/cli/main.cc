// `filemesh`: local `ls` and `find`; remote mode (--gateway) is handed over to
// the filemesh-remote helper.

#include "cli/handoff.h"
#include "cli/program.h"

int main(int argc, char** argv) {
  filemesh::cli::SetHandOffArguments(argv);
  return filemesh::cli::RunProgram(argc, argv, filemesh::cli::HandOffToRemote);
}
