// Opening directories strictly beneath a root directory.
//
// Two resolvers with the same contract: the kernel's openat2(RESOLVE_BENEATH)
// where it exists, and a portable component-by-component walk that opens each
// component with O_NOFOLLOW and resolves symbolic links itself. Neither ever
// opens anything outside the root, whatever is renamed or swapped meanwhile.
//
// Descriptors: a lookup holds at most two at any moment, whatever the depth
// (the portable walk keeps the current directory's and the one being opened;
// a ".." from a link target re-walks from the root over the names it kept).
// Running out of them (EMFILE, ENFILE) is ResourceExhausted, never a skip.
//
// openat2 answers EAGAIN when a rename or mount anywhere in the system races a
// lookup that goes through ".."; it is retried kOpenat2MaxTries times in all
// (EINTR too), then that one lookup is done by the portable walk, which always
// ends. EINTR on every try is Unavailable.

#ifndef FILEMESH_SRC_FS_BENEATH_H_
#define FILEMESH_SRC_FS_BENEATH_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "fs/unique_fd.h"

namespace filemesh::internal {

enum class Resolver {
  kAuto,      // openat2 when the kernel has it, else the portable walk
  kOpenat2,   // openat2 (fails with ENOSYS where missing); the portable walk
              // only for a lookup still racing renames after kOpenat2MaxTries
  kPortable,  // the O_NOFOLLOW walk only
};

// Tries of one openat2 call that fails with EAGAIN or EINTR.
inline constexpr int kOpenat2MaxTries = 16;

// True if this kernel (and seccomp policy) allows openat2.
bool Openat2Available();

// openat2(dir_fd, path, {flags, resolve}): an fd, or -errno.
using Openat2Function = int (*)(int dir_fd, const char* path, uint64_t flags, uint64_t resolve);

// Makes the resolvers call `fn` instead of the openat2 system call (nullptr
// restores it), so tests can drive the retry logic. Openat2Available() still
// asks the kernel.
void SetOpenat2ForTesting(Openat2Function fn);

// The openat2 system call itself, once (a fake may pass calls on to it).
int SystemOpenat2(int dir_fd, const char* path, uint64_t flags, uint64_t resolve);

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
// /proc link are PermissionDenied. Out of descriptors is ResourceExhausted.
// Other errors as ErrnoToStatus.
//
// With `one_file_system`, the lookup may not cross a mount point
// (openat2's RESOLVE_NO_XDEV; the portable walk checks that the directory
// reached is on the root's filesystem): PermissionDenied naming the path.
absl::StatusOr<UniqueFd> OpenDirectoryBeneath(int root_fd, const std::string& clean_path,
                                              Resolver resolver = Resolver::kAuto,
                                              bool one_file_system = false);

// OpenDirectoryBeneath for a caller limited to `scope` (a path relative to
// the root, checked with CleanRelativePath; "" is the whole root):
// `clean_path` must name the scope or lie beneath it (else PermissionDenied),
// and it is resolved beneath the scope's directory, so that no symbolic link
// on the way leads out of the scope (PermissionDenied too). Errors name
// `clean_path` as the caller gave it.
absl::StatusOr<UniqueFd> OpenDirectoryInScope(int root_fd, std::string_view scope,
                                              const std::string& clean_path,
                                              Resolver resolver = Resolver::kAuto,
                                              bool one_file_system = false);

// Opens the directory `rel` beneath `base_fd` without following any symbolic
// link in any component (used by the tree walk, which never follows links).
// Returns the fd, or -errno (-EMFILE or -ENFILE when out of descriptors).
int OpenSubdirectoryNoFollow(int base_fd, const std::string& rel,
                             Resolver resolver = Resolver::kAuto);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_BENEATH_H_
