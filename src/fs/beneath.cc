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
#include <vector>

#include "absl/strings/str_cat.h"
#include "fs/errno_status.h"

namespace filemesh::internal {
namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY;
// Linux's own limit on symbolic links followed in one lookup.
constexpr int kMaxSymlinks = 40;

int RawOpenat2(int dir_fd, const char* path, uint64_t flags, uint64_t resolve) {
  open_how how{};
  how.flags = flags;
  how.resolve = resolve;
  for (;;) {
    const long fd = ::syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN comes from a concurrent rename when RESOLVE_BENEATH is set; the
    // kernel asks us to retry.
    if (errno != EINTR && errno != EAGAIN) return -errno;
  }
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

// The portable resolver: walks `clean_path` one component at a time with
// O_PATH | O_NOFOLLOW, following relative links by splicing their targets into
// the remaining components, and tracking the directories passed so ".." can
// never climb above `root_fd`. Returns an fd or -errno (-EXDEV for escapes).
int PortableOpenBeneath(int root_fd, std::string_view clean_path, bool follow_symlinks) {
  std::deque<std::string> pending;
  for (std::string_view part : SplitComponents(clean_path)) pending.emplace_back(part);

  std::vector<UniqueFd> stack;  // directories below the root, innermost last
  const auto current = [&] { return stack.empty() ? root_fd : stack.back().get(); };
  int links_followed = 0;

  while (!pending.empty()) {
    const std::string part = std::move(pending.front());
    pending.pop_front();
    if (part == ".") continue;
    if (part == "..") {
      if (stack.empty()) return -EXDEV;
      stack.pop_back();
      continue;
    }
    UniqueFd fd(::openat(current(), part.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return -errno;
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return -errno;
    if (S_ISDIR(st.st_mode)) {
      stack.push_back(std::move(fd));
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
  for (;;) {
    const int fd = ::openat(current(), ".", kDirFlags);
    if (fd >= 0) return fd;
    if (errno != EINTR) return -errno;
  }
}

}  // namespace

bool Openat2Available() {
  int state = openat2_state.load(std::memory_order_relaxed);
  if (state < 0) {
    const int fd = RawOpenat2(AT_FDCWD, "/", kDirFlags, RESOLVE_NO_MAGICLINKS);
    // ENOSYS: kernel before 5.6; EPERM: a seccomp filter that refuses it.
    state = (fd >= 0) ? 1 : (fd == -ENOSYS || fd == -EPERM) ? 0 : 1;
    if (fd >= 0) ::close(fd);
    openat2_state.store(state, std::memory_order_relaxed);
  }
  return state == 1;
}

void SetAutoResolverForTesting(Resolver resolver) { auto_resolver.store(resolver); }

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
                                              Resolver resolver) {
  const char* path = clean_path.empty() ? "." : clean_path.c_str();
  const int fd = UseOpenat2(resolver)
                     ? RawOpenat2(root_fd, path, kDirFlags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
                     : PortableOpenBeneath(root_fd, clean_path, /*follow_symlinks=*/true);
  if (fd >= 0) return UniqueFd(fd);
  // openat2 reports absolute links under RESOLVE_BENEATH as EXDEV too.
  return ErrnoToStatus(-fd, "open", clean_path.empty() ? "." : clean_path);
}

int OpenSubdirectoryNoFollow(int base_fd, const std::string& rel, Resolver resolver) {
  if (UseOpenat2(resolver)) {
    return RawOpenat2(base_fd, rel.c_str(), kDirFlags | O_NOFOLLOW,
                      RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  }
  return PortableOpenBeneath(base_fd, rel, /*follow_symlinks=*/false);
}

}  // namespace filemesh::internal
