#include "fs/beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <deque>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fs/errno_status.h"

namespace filemesh::internal {
namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY;
// Linux's own limit on symbolic links followed in one lookup.
constexpr int kMaxSymlinks = 40;
// Tries of the portable walk's last open when it fails with EINTR (a signal
// during an open that waits, on a network or FUSE filesystem).
constexpr int kMaxEintrTries = kOpenat2MaxTries;

std::atomic<Openat2Function> openat2_for_testing{nullptr};

// openat2, tried again on EINTR and on EAGAIN (a rename or mount raced a ".."
// under RESOLVE_BENEATH, and the kernel asks us to retry), kOpenat2MaxTries
// times in all: a machine that renames without pause cannot hold a lookup
// forever. Returns the fd or the last -errno.
int Openat2WithRetries(int dir_fd, const char* path, uint64_t flags, uint64_t resolve) {
  const Openat2Function fake = openat2_for_testing.load(std::memory_order_relaxed);
  const Openat2Function openat2 = fake != nullptr ? fake : SystemOpenat2;
  int result = -EINTR;
  for (int tries = 0; tries < kOpenat2MaxTries; ++tries) {
    result = openat2(dir_fd, path, flags, resolve);
    if (result != -EINTR && result != -EAGAIN) break;
  }
  return result;
}

// 1: available, 0: not, -1: unknown yet.
std::atomic<int> openat2_state{-1};
std::atomic<Resolver> auto_resolver{Resolver::kAuto};

bool UseOpenat2(Resolver resolver) {
  switch (resolver) {
    case Resolver::kOpenat2:
      return true;
    case Resolver::kPortable:
      return false;
    case Resolver::kAuto: {
      const Resolver forced = auto_resolver.load(std::memory_order_relaxed);
      return forced == Resolver::kAuto ? Openat2Available() : forced == Resolver::kOpenat2;
    }
  }
  return false;
}

std::vector<std::string_view> SplitComponents(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// Opens `below` (directory names joined by '/', as the portable walk kept
// them) from `root_fd` with O_PATH, following no link and going only into
// directories: a component renamed or replaced meanwhile fails (ENOENT,
// ENOTDIR) rather than leading anywhere else. Holds two fds at most. Returns
// the fd or -errno.
int ReopenBeneath(int root_fd, std::string_view below) {
  UniqueFd dir;
  std::string name;
  for (size_t start = 0; start < below.size();) {
    size_t end = below.find('/', start);
    if (end == std::string_view::npos) end = below.size();
    name.assign(below.substr(start, end - start));
    UniqueFd next(::openat(dir.valid() ? dir.get() : root_fd, name.c_str(),
                           O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC));
    if (!next.valid()) return -errno;
    dir = std::move(next);
    start = end + 1;
  }
  return dir.Release();
}

// The portable resolver: walks `clean_path` one component at a time with
// O_PATH | O_NOFOLLOW, following relative links by splicing their targets into
// the remaining components. It keeps the names of the directories passed, not
// their fds: a ".." (only link targets hold one) drops the last name, so it can
// never climb above `root_fd`, and the next step re-opens the directory from
// the root. At most two fds are open at any moment, whatever the depth.
// Returns an fd or -errno (-EXDEV for escapes).
int PortableOpenBeneath(int root_fd, std::string_view clean_path, bool follow_symlinks) {
  std::deque<std::string> pending;
  for (std::string_view part : SplitComponents(clean_path)) pending.emplace_back(part);

  // The directory reached: `below` names it from the root ("" is the root);
  // `dir` is open on it unless it is the root or a ".." left it to re-open.
  std::string below;
  UniqueFd dir;
  bool reopen = false;
  const auto current = [&]() -> int {
    if (below.empty()) return root_fd;
    if (reopen) {
      const int fd = ReopenBeneath(root_fd, below);
      if (fd < 0) return fd;
      dir.Reset(fd);
      reopen = false;
    }
    return dir.get();
  };
  int links_followed = 0;

  while (!pending.empty()) {
    const std::string part = std::move(pending.front());
    pending.pop_front();
    if (part == ".") continue;
    if (part == "..") {
      if (below.empty()) return -EXDEV;
      const size_t slash = below.rfind('/');
      below.resize(slash == std::string::npos ? 0 : slash);
      dir.Reset();
      reopen = true;
      continue;
    }
    const int at = current();
    if (at < 0) return at;
    UniqueFd fd(::openat(at, part.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return -errno;
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return -errno;
    if (S_ISDIR(st.st_mode)) {
      if (!below.empty()) below += '/';
      below += part;
      dir = std::move(fd);
      reopen = false;
      continue;
    }
    if (!S_ISLNK(st.st_mode)) return -ENOTDIR;
    if (!follow_symlinks) return -ELOOP;
    if (++links_followed > kMaxSymlinks) return -ELOOP;
    char target[PATH_MAX];
    // Read the link through the O_PATH fd: the very inode that was checked.
    const ssize_t n = ::readlinkat(fd.get(), "", target, sizeof(target));
    if (n < 0) return -errno;
    if (n == 0) return -ENOENT;
    if (static_cast<size_t>(n) == sizeof(target)) return -ENAMETOOLONG;
    const std::string_view link(target, static_cast<size_t>(n));
    if (link.front() == '/') return -EXDEV;  // absolute: leaves the root by definition
    const std::vector<std::string_view> parts = SplitComponents(link);
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.emplace_front(*it);
  }
  const int at = current();
  if (at < 0) return at;
  int result = -EINTR;
  for (int tries = 0; tries < kMaxEintrTries && result == -EINTR; ++tries) {
    const int fd = ::openat(at, ".", kDirFlags);
    result = fd >= 0 ? fd : -errno;
  }
  return result;
}

}  // namespace

bool Openat2Available() {
  int state = openat2_state.load(std::memory_order_relaxed);
  if (state < 0) {
    const int fd = SystemOpenat2(AT_FDCWD, "/", kDirFlags, RESOLVE_NO_MAGICLINKS);
    // ENOSYS: kernel before 5.6; EPERM: a seccomp filter that refuses it.
    state = (fd >= 0) ? 1 : (fd == -ENOSYS || fd == -EPERM) ? 0 : 1;
    if (fd >= 0) ::close(fd);
    openat2_state.store(state, std::memory_order_relaxed);
  }
  return state == 1;
}

void SetAutoResolverForTesting(Resolver resolver) { auto_resolver.store(resolver); }

void SetOpenat2ForTesting(Openat2Function fn) { openat2_for_testing.store(fn); }

int SystemOpenat2(int dir_fd, const char* path, uint64_t flags, uint64_t resolve) {
  open_how how{};
  how.flags = flags;
  how.resolve = resolve;
  const long fd = ::syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
  return fd >= 0 ? static_cast<int>(fd) : -errno;
}

absl::StatusOr<std::string> CleanRelativePath(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("path ", QuotePath(path), " contains a NUL byte"));
  }
  if (path.size() >= PATH_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("path is ", path.size(), " bytes long; the limit is ", PATH_MAX - 1));
  }
  if (!path.empty() && path.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("path ", QuotePath(path), " is absolute; paths are relative to the root"));
  }
  std::vector<std::string_view> kept;
  for (std::string_view part : SplitComponents(path)) {
    if (part == ".") continue;
    if (part.size() > NAME_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          "path ", QuotePath(path), " has a component longer than ", NAME_MAX, " bytes"));
    }
    if (part == "..") {
      if (kept.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("path ", QuotePath(path), " climbs out of the root"));
      }
      kept.pop_back();
      continue;
    }
    kept.push_back(part);
  }
  std::string clean;
  clean.reserve(path.size());
  for (std::string_view part : kept) {
    if (!clean.empty()) clean += '/';
    clean.append(part);
  }
  return clean;
}

absl::StatusOr<UniqueFd> OpenDirectoryBeneath(int root_fd, const std::string& clean_path,
                                              Resolver resolver, bool one_file_system) {
  const char* const shown = clean_path.empty() ? "." : clean_path.c_str();
  const auto other_filesystem = [&] {
    return absl::PermissionDeniedError(absl::StrCat(
        "open ", QuotePath(shown),
        ": crosses onto another filesystem, and this service lists one (one_file_system)"));
  };
  int fd = -EAGAIN;
  bool portable = false;
  if (UseOpenat2(resolver)) {
    fd = Openat2WithRetries(
        root_fd, shown, kDirFlags,
        RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (one_file_system ? RESOLVE_NO_XDEV : 0));
    if (fd == -EXDEV && one_file_system) {
      // A mount crossed, or the root left: the lookup without the mount
      // rule tells which.
      const int again =
          Openat2WithRetries(root_fd, shown, kDirFlags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
      if (again >= 0) {
        ::close(again);
        return other_filesystem();
      }
    }
  }
  // Without openat2, or still racing renames after the last try: the portable
  // walk, which always ends.
  if (fd == -EAGAIN) {
    fd = PortableOpenBeneath(root_fd, clean_path, /*follow_symlinks=*/true);
    portable = true;
  }
  if (fd >= 0 && portable && one_file_system) {
    struct stat root_st {};
    struct stat dir_st {};
    if (::fstat(root_fd, &root_st) != 0 || ::fstat(fd, &dir_st) != 0 ||
        root_st.st_dev != dir_st.st_dev) {
      ::close(fd);
      return other_filesystem();
    }
  }
  if (fd >= 0) return UniqueFd(fd);
  // openat2 reports absolute links under RESOLVE_BENEATH as EXDEV too.
  return ErrnoToStatus(-fd, "open", clean_path.empty() ? "." : clean_path);
}

absl::StatusOr<UniqueFd> OpenDirectoryInScope(int root_fd, std::string_view scope,
                                              const std::string& clean_path, Resolver resolver,
                                              bool one_file_system) {
  if (scope.empty()) return OpenDirectoryBeneath(root_fd, clean_path, resolver, one_file_system);
  absl::StatusOr<std::string> clean_scope = CleanRelativePath(scope);
  if (!clean_scope.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("scope: ", clean_scope.status().message()));
  }
  const std::string& s = *clean_scope;
  const bool inside = s.empty() || clean_path == s ||
                      (clean_path.size() > s.size() && clean_path.compare(0, s.size(), s) == 0 &&
                       clean_path[s.size()] == '/');
  if (!inside) {
    return absl::PermissionDeniedError(
        absl::StrCat(QuotePath(clean_path.empty() ? "." : clean_path),
                     " is outside this caller's scope ", QuotePath(s)));
  }
  absl::StatusOr<UniqueFd> scope_fd = OpenDirectoryBeneath(root_fd, s, resolver, one_file_system);
  if (!scope_fd.ok() || s.empty()) return scope_fd;
  const std::string rest = clean_path.size() == s.size() ? "" : clean_path.substr(s.size() + 1);
  absl::StatusOr<UniqueFd> dir =
      OpenDirectoryBeneath(scope_fd->get(), rest, resolver, one_file_system);
  if (dir.ok()) return dir;
  // The error names the path below the scope: name the caller's whole path,
  // and the scope where the root was meant.
  const std::string_view message(dir.status().message().data(), dir.status().message().size());
  const size_t colon = message.find("\": ");
  std::string reason(colon == std::string_view::npos ? message : message.substr(colon + 3));
  if (reason == "resolves outside the root") {
    reason = "resolves outside this caller's scope " + QuotePath(s);
  }
  return absl::Status(dir.status().code(),
                      absl::StrCat("open ", QuotePath(clean_path), ": ", reason));
}

int OpenSubdirectoryNoFollow(int base_fd, const std::string& rel, Resolver resolver) {
  int fd = -EAGAIN;
  if (UseOpenat2(resolver)) {
    fd = Openat2WithRetries(base_fd, rel.c_str(), kDirFlags | O_NOFOLLOW,
                            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  }
  if (fd == -EAGAIN) fd = PortableOpenBeneath(base_fd, rel, /*follow_symlinks=*/false);
  return fd;
}

}  // namespace filemesh::internal
