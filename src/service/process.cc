#include "filemesh/service/process.hpp"

#include <pthread.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/absl_compat.h"
#include "filemesh/service/log.hpp"

namespace filemesh {
namespace {

using internal::AbslView;
using internal::StdView;

// Abseil's own flags (--flagfile, --fromenv, ...) are not the program's: they
// are neither read from the environment nor listed in the help.
bool IsProgramFlag(const absl::CommandLineFlag& flag) {
  const std::string file = flag.Filename();
  return !absl::StartsWith(file, "absl/") && !absl::StartsWith(file, "./absl/") &&
         !absl::StrContains(file, "/absl/");
}

std::vector<absl::CommandLineFlag*> ProgramFlags() {
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsProgramFlag(*flag)) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return a->Name() < b->Name();
            });
  return flags;
}

std::string_view ProgramName(int argc, char** argv) {
  if (argc < 1 || argv[0] == nullptr) return "filemesh";
  std::string_view name = argv[0];
  if (const size_t slash = name.rfind('/'); slash != std::string_view::npos) {
    name.remove_prefix(slash + 1);
  }
  return name;
}

bool IsHelpArgument(std::string_view arg) {
  return arg == "--help" || arg == "-help" || arg == "--helpfull" || arg == "-helpfull" ||
         arg == "--helpshort" || arg == "-helpshort" || arg == "-h";
}

// Abseil's --help lists flags without their variables and exits 1; this one
// exits 0.
[[noreturn]] void PrintHelpAndExit(std::string_view usage) {
  std::string text(usage);
  absl::StrAppend(&text,
                  "\n\nFlags (each may also be set from the environment variable shown; the "
                  "command line wins):\n");
  for (const absl::CommandLineFlag* flag : ProgramFlags()) {
    const std::string value = flag->DefaultValue();
    const bool quoted = flag->IsOfType<std::string>();
    absl::StrAppend(&text, "  --", flag->Name(), "  (", flag->Help(),
                    ")\n      default: ", quoted ? "\"" : "", value, quoted ? "\"" : "",
                    "; env: ", FlagEnvironmentVariable(StdView(flag->Name())), "\n");
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  std::exit(0);
}

// What a duration flag's value must look like; Abseil's own message ("Illegal
// value '5' specified for flag ...") does not say.
constexpr char kDurationHint[] =
    "is not a duration: give a number and its unit, e.g. 5s, 250ms, 1m30s or 2h (units: ns, "
    "us, ms, s, m, h)";

bool IsDurationFlag(const absl::CommandLineFlag& flag) { return flag.IsOfType<absl::Duration>(); }

// Checks the values the command line gives duration flags (--name=value,
// --name value, also with one dash) before Abseil parses them, so that a
// value without its unit is told what it lacks. Exits 1, as a malformed
// command line does.
void CheckDurations(int argc, char** argv, std::string_view program) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    std::string_view name = arg;
    std::string_view value;
    const size_t equals = arg.find('=');
    if (equals != std::string_view::npos) {
      name = arg.substr(0, equals);
      value = arg.substr(equals + 1);
    }
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(AbslView(name));
    if (flag == nullptr || !IsDurationFlag(*flag)) continue;
    if (equals == std::string_view::npos) {
      if (i + 1 >= argc) continue;  // Abseil says a value is missing
      value = argv[++i];
    }
    absl::Duration parsed;
    if (!absl::ParseDuration(AbslView(value), &parsed)) {
      const std::string message = absl::StrCat(AbslView(program), ": --", AbslView(name), " \"",
                                               AbslView(value), "\" ", kDurationHint, "\n");
      std::fwrite(message.data(), 1, message.size(), stderr);
      std::exit(1);
    }
  }
}

void ApplyEnvironment(std::string_view program) {
  for (absl::CommandLineFlag* flag : ProgramFlags()) {
    const std::string variable = FlagEnvironmentVariable(StdView(flag->Name()));
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      const std::string message = absl::StrCat(
          AbslView(program), ": environment variable ", variable, " (for --", flag->Name(),
          "): ", IsDurationFlag(*flag) ? absl::StrCat("\"", value, "\" ", kDurationHint) : error,
          "\n");
      std::fwrite(message.data(), 1, message.size(), stderr);
      std::exit(2);
    }
  }
}

sigset_t TerminationSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

std::string FlagEnvironmentVariable(std::string_view flag_name) {
  return absl::StrCat("FILEMESH_", absl::AsciiStrToUpper(AbslView(flag_name)));
}

std::vector<char*> ParseFlags(int argc, char** argv, std::string_view usage) {
  const std::string_view program = ProgramName(argc, argv);
  static std::once_flag usage_once;  // Abseil allows setting it once only
  std::call_once(usage_once, [usage] { absl::SetProgramUsageMessage(AbslView(usage)); });
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (IsHelpArgument(arg)) PrintHelpAndExit(usage);
  }
  ApplyEnvironment(program);
  CheckDurations(argc, argv, program);
  return absl::ParseCommandLine(argc, argv);
}

long RaiseOpenFileLimit(long wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  const rlim_t target = std::min<rlim_t>(static_cast<rlim_t>(std::max(wanted, 0L)), limit.rlim_max);
  if (limit.rlim_cur < target) {
    rlimit raised = limit;
    raised.rlim_cur = target;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? std::numeric_limits<long>::max()
                                         : static_cast<long>(limit.rlim_cur);
}

void TerminationSignals::Block() {
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
  const sigset_t set = TerminationSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int TerminationSignals::Wait() {
  const sigset_t set = TerminationSet();
  int signo = 0;
  while (sigwait(&set, &signo) != 0) {
  }
  // This thread no longer blocks them: the next one is delivered here and
  // ends the process.
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  LogEvent("stopping", {{"signal", Name(signo)}});
  return signo;
}

std::string TerminationSignals::Name(int signo) {
  switch (signo) {
    case SIGTERM:
      return "TERM";
    case SIGINT:
      return "INT";
    default:
      return absl::StrCat(signo);
  }
}

}  // namespace filemesh
