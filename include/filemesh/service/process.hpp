// What every service main() does before and after serving: read its flags
// (from the command line, or from FILEMESH_* environment variables) and wait
// for SIGTERM or SIGINT to stop.
//
//   int main(int argc, char** argv) {
//     filemesh::TerminationSignals::Block();   // before any thread starts
//     filemesh::ParseFlags(argc, argv, "mserv1 --root DIR [--grpc_listen HOST:PORT]");
//     ... start serving ...
//     filemesh::TerminationSignals::Wait();   // logs event=stopping signal=TERM
//     ... shut down gracefully ...
//   }
//
// Flags are Abseil flags (ABSL_FLAG) defined by the program. Thread safety:
// call both from main()'s thread.

#ifndef FILEMESH_SERVICE_PROCESS_HPP_
#define FILEMESH_SERVICE_PROCESS_HPP_

#include <string>
#include <string_view>
#include <vector>

namespace filemesh {

// The environment variable that sets flag `flag_name`: "FILEMESH_" followed
// by the name in upper case ("grpc_listen" -> "FILEMESH_GRPC_LISTEN").
std::string FlagEnvironmentVariable(std::string_view flag_name);

// Parses the program's flags and returns argv[0] followed by the positional
// arguments. First, each flag the program defines (not Abseil's own) whose
// FlagEnvironmentVariable is set takes that variable's value (an empty
// variable is an empty value); then the command line is parsed, so it wins.
// `--help` (also -help, --helpfull, --helpshort, -h) prints `usage` and every
// flag with its default and variable to stdout and exits 0. A malformed
// variable prints which variable and why and exits 2; a malformed command
// line exits 1 with Abseil's message (a duration without its unit, such as
// `--request_timeout 5`, with one that names the units). Call once per
// process.
std::vector<char*> ParseFlags(int argc, char** argv, std::string_view usage);

// Raises this process's soft limit on open file descriptors (RLIMIT_NOFILE)
// to at least `wanted`, up to the hard limit, and returns the soft limit now
// in force. A server that accepts many connections needs one descriptor for
// each; Debian's default soft limit is 1,024. Process-wide: call it from
// main(), once, before serving.
long RaiseOpenFileLimit(long wanted);

// SIGTERM and SIGINT as a request to stop, taken synchronously.
class TerminationSignals {
 public:
  // Blocks SIGTERM and SIGINT in the calling thread, so every thread started
  // afterwards inherits the block and the signals stay pending for Wait().
  // Also resets them to their default action: a shell starts background jobs
  // with SIGINT ignored, and an ignored signal never becomes pending. Call
  // first in main(), before any thread starts.
  static void Block();

  // Waits for SIGTERM or SIGINT, logs `event=stopping signal=TERM` (or INT)
  // and returns its number. Afterwards a second one ends the process at once
  // by the signal's default action, so a shutdown that hangs can still be
  // interrupted.
  static int Wait();

  // "TERM", "INT", or the number for other signals.
  static std::string Name(int signo);
};

}  // namespace filemesh

#endif  // FILEMESH_SERVICE_PROCESS_HPP_
