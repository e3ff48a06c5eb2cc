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

namespace {

// The fixed head of a record getdents64 fills in (struct linux_dirent64; no
// header exports it); the NUL-terminated name follows d_type.
struct Dirent64Head {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
};
constexpr size_t kNameOffset = offsetof(Dirent64Head, d_type) + 1;

class Output {
 public:
  Output() { buf_.reserve(kCapacity); }
  ~Output() { Flush(); }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  void Line(const std::string& dir, const char* name, size_t name_len) {
    if (buf_.size() + dir.size() + name_len + 2 > kCapacity) Flush();
    buf_.append(dir);
    buf_.push_back('/');
    buf_.append(name, name_len);
    buf_.push_back('\n');
  }

  void Flush() {
    const char* p = buf_.data();
    size_t left = buf_.size();
    while (left > 0) {
      const ssize_t n = write(STDOUT_FILENO, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("filemesh_floor: write");
        _exit(1);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    buf_.clear();
  }

 private:
  static constexpr size_t kCapacity = 1 << 20;
  std::string buf_;
};

bool IsDotOrDotDot(const char* name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ROOT PATTERN\n", argv[0]);
    return 2;
  }
  std::string root = argv[1];
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  const char* const pattern = argv[2];

  Output out;
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
