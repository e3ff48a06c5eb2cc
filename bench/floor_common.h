// What filemesh_floor and filemesh_parallel_floor share: the head of a raw
// getdents64 record and a large output buffer. Header-only; bench use only.

#ifndef FILEMESH_BENCH_FLOOR_COMMON_H_
#define FILEMESH_BENCH_FLOOR_COMMON_H_

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

namespace filemesh_bench {

// The fixed head of a record getdents64 fills in (struct linux_dirent64; no
// header exports it); the NUL-terminated name follows d_type.
struct Dirent64Head {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
};
constexpr size_t kNameOffset = offsetof(Dirent64Head, d_type) + 1;

inline bool IsDotOrDotDot(const char* name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

// Lines "DIR/NAME\n" gathered in 1 MiB and written to stdout with write(2);
// one Output per thread, and their flushes never interleave. A failed write
// ends the process (status 1), naming `program`.
class Output {
 public:
  explicit Output(const char* program) : program_(program) { buf_.reserve(kCapacity); }
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
    static std::mutex write_mu;  // uncontended with one thread: once a MiB
    std::lock_guard<std::mutex> lock(write_mu);
    const char* p = buf_.data();
    size_t left = buf_.size();
    while (left > 0) {
      const ssize_t n = write(STDOUT_FILENO, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "%s: write: %s\n", program_, std::strerror(errno));
        _exit(1);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    buf_.clear();
  }

 private:
  static constexpr size_t kCapacity = 1 << 20;
  const char* const program_;
  std::string buf_;
};

}  // namespace filemesh_bench

#endif  // FILEMESH_BENCH_FLOOR_COMMON_H_
