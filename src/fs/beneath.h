// Opening directories strictly beneath a root directory.
//
// Two resolvers with the same contract: the kernel's openat2(RESOLVE_BENEATH)
// where it exists, and a portable component-by-component walk that opens each
// component with O_NOFOLLOW and resolves symbolic links itself. Neither ever
// opens anything outside the root, whatever is renamed or swapped meanwhile.

#ifndef FILEMESH_SRC_FS_BENEATH_H_
#define FILEMESH_SRC_FS_BENEATH_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "fs/unique_fd.h"

namespace filemesh::internal {

enum class Resolver {
  kAuto,      // openat2 when the kernel has it, else the portable walk
  kOpenat2,   // openat2 only (fails with ENOSYS where missing)
  kPortable,  // the O_NOFOLLOW walk only
};

// True if this kernel (and seccomp policy) allows openat2.
bool Openat2Available();

// Makes Resolver::kAuto mean `resolver` in this process (kAuto restores the
// default), so tests can run the public classes on the portable walk.
void SetAutoResolverForTesting(Resolver resolver);

// Checks a request path lexically and returns it cleaned: no empty or "."
// components, ".." folded into its parent. "" (or ".") is the root itself.
// InvalidArgument if the path is absolute, holds a NUL byte, is longer than
// PATH_MAX or has a component longer than NAME_MAX, or if ".." climbs above
// the root.
absl::StatusOr<std::string> CleanRelativePath(std::string_view path);

// Opens the directory at `clean_path` (from CleanRelativePath) beneath
// `root_fd` for reading. Relative symbolic links are followed while they stay
// beneath the root; a link that leaves it, an absolute link and a "magic"
// /proc link are PermissionDenied. Other errors as ErrnoToStatus.
absl::StatusOr<UniqueFd> OpenDirectoryBeneath(int root_fd, const std::string& clean_path,
                                              Resolver resolver = Resolver::kAuto);

// Opens the directory `rel` beneath `base_fd` without following any symbolic
// link in any component (used by the tree walk, which never follows links).
// Returns the fd, or -errno.
int OpenSubdirectoryNoFollow(int base_fd, const std::string& rel,
                             Resolver resolver = Resolver::kAuto);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_BENEATH_H_
