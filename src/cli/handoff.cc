#include "cli/handoff.h"

#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace filemesh::cli {
namespace {

char** hand_off_argv = nullptr;

constexpr char kHelperName[] = "filemesh-remote";

// The directory of this program's executable, "" when unknown.
std::string ProgramDirectory() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "";
  const std::string exe(path, static_cast<size_t>(n));
  const size_t slash = exe.rfind('/');
  return slash == std::string::npos ? "" : exe.substr(0, slash);
}

}  // namespace

void SetHandOffArguments(char** argv) { hand_off_argv = argv; }

std::string RemoteHelperPath() {
  const std::string dir = ProgramDirectory();
  if (dir.empty()) return "";
  // FILEMESH_LIBEXEC_FROM_BIN: where `cmake --install` puts the helper,
  // relative to where it puts this program (src/cli/CMakeLists.txt).
  for (const std::string& candidate :
       {absl::StrCat(dir, "/", kHelperName),
        absl::StrCat(dir, "/", FILEMESH_LIBEXEC_FROM_BIN, "/", kHelperName)}) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<RemoteGateway>> HandOffToRemote(const GatewayOptions& /*options*/) {
  const std::string helper = RemoteHelperPath();
  if (helper.empty() || hand_off_argv == nullptr) {
    return absl::UnavailableError(absl::StrCat("remote mode needs the ", kHelperName,
                                               " helper beside this program or in ",
                                               FILEMESH_LIBEXEC_FROM_BIN, "/, and there is none"));
  }
  std::fflush(stdout);
  std::fflush(stderr);
  execv(helper.c_str(), hand_off_argv);
  return absl::UnavailableError(
      absl::StrCat("cannot run ", helper, " for remote mode: ", std::strerror(errno)));
}

}  // namespace filemesh::cli
