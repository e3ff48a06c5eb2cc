// filemesh_floor: the one-thread "floor" for a name search.
//
//   filemesh_floor ROOT PATTERN
//
// Walks ROOT iteratively with openat(O_DIRECTORY | O_NOFOLLOW) and the raw
// getdents64 system call, matches each entry name with fnmatch(3) (flags 0,
// like `find -name`), and prints every matching path (ROOT/relative/path), one
// per line, through one large output buffer. Hidden entries are included and
// descended into; symbolic links are never followed; nothing is stat()ed (the
// directory entry type decides what to descend into; DT_UNKNOWN is tried as a
// directory). It does the least work any search of names must do, so it is
// the reference `filemesh find` is measured against (bench/compare.sh).
//
// Exit status: 0, or 1 if some directory could not be read (reported on
// stderr, like find), 2 on a usage error.

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "floor_common.h"

using filemesh_bench::Dirent64Head;
using filemesh_bench::IsDotOrDotDot;
using filemesh_bench::kNameOffset;
using filemesh_bench::Output;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ROOT PATTERN\n", argv[0]);
    return 2;
  }
  std::string root = argv[1];
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  const char* const pattern = argv[2];

  Output out("filemesh_floor");
  std::vector<std::string> stack;  // directories still to read
  stack.push_back(root == "/" ? std::string() : root);
  alignas(8) static char buf[64 * 1024];
  int status = 0;

  while (!stack.empty()) {
    std::string dir = std::move(stack.back());
    stack.pop_back();
    const int fd = openat(AT_FDCWD, dir.empty() ? "/" : dir.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      // A DT_UNKNOWN entry that is no directory (or a symlink) is not an error.
      if (errno != ENOTDIR && errno != ELOOP) {
        std::fprintf(stderr, "filemesh_floor: %s: %s\n", dir.c_str(), std::strerror(errno));
        status = 1;
      }
      continue;
    }
    for (;;) {
      const long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "filemesh_floor: %s: %s\n", dir.c_str(), std::strerror(errno));
        status = 1;
        break;
      }
      for (long off = 0; off < n;) {
        Dirent64Head d;
        std::memcpy(&d, buf + off, sizeof d);
        const char* name = buf + off + kNameOffset;
        off += d.d_reclen;
        if (IsDotOrDotDot(name)) continue;
        const size_t len = std::strlen(name);
        if (fnmatch(pattern, name, 0) == 0) out.Line(dir, name, len);
        if (d.d_type == DT_DIR || d.d_type == DT_UNKNOWN) {
          std::string child;
          child.reserve(dir.size() + 1 + len);
          child.append(dir).push_back('/');
          child.append(name, len);
          stack.push_back(std::move(child));
        }
      }
    }
    close(fd);
  }
  out.Flush();
  return status;
}
