// Scratch directories for the benchmarks: created with mkdtemp under /tmp
// (or $TMPDIR), filled with empty files, removed when the object dies (the
// benchmarks keep them in function-local statics, so at exit).

#ifndef FILEMESH_BENCH_TEMP_TREE_H_
#define FILEMESH_BENCH_TEMP_TREE_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace filemesh::bench {

[[noreturn]] inline void Die(const std::string& what) {
  std::fprintf(stderr, "bench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

class TempDir {
 public:
  explicit TempDir(const char* prefix) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) Die("mkdtemp " + tmpl);
    path_ = buf.data();
    fd_ = open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) Die("open " + path_);
  }
  ~TempDir() {
    if (fd_ >= 0) close(fd_);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (ec) std::fprintf(stderr, "bench: removing %s: %s\n", path_.c_str(), ec.message().c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Creates an empty file `name` in the directory `dir_fd`.
inline void Touch(int dir_fd, const char* name) {
  const int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) Die(std::string("create ") + name);
  close(fd);
}

// Creates the directory `name` in `dir_fd` and returns it opened.
inline int MakeDir(int dir_fd, const char* name) {
  if (mkdirat(dir_fd, name, 0755) != 0) Die(std::string("mkdir ") + name);
  const int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) Die(std::string("open ") + name);
  return fd;
}

// Seconds since `start`, for reporting generation time.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace filemesh::bench

#endif  // FILEMESH_BENCH_TEMP_TREE_H_
