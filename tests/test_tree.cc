#include "test_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace filemesh::testing {
namespace {

[[noreturn]] void Die(const char* what, const std::string& path) {
  std::fprintf(stderr, "test tree: %s %s: %s\n", what, path.c_str(), std::strerror(errno));
  std::abort();
}

// Removes everything inside the open directory `fd`, iteratively, with fds
// only (no path length limit), restoring permissions as it goes.
void RemoveContents(int fd) {
  struct Frame {
    int fd;
    DIR* dir;
  };
  std::vector<Frame> stack;
  const int first = ::dup(fd);
  stack.push_back({first, ::fdopendir(first)});
  while (!stack.empty()) {
    Frame& top = stack.back();
    errno = 0;
    struct dirent* e = ::readdir(top.dir);
    if (e == nullptr) {
      ::closedir(top.dir);
      stack.pop_back();
      if (!stack.empty()) ::rewinddir(stack.back().dir);  // retry the now-empty child
      continue;
    }
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    if (::unlinkat(top.fd, e->d_name, 0) == 0) continue;
    ::fchmodat(top.fd, e->d_name, 0700, 0);
    if (::unlinkat(top.fd, e->d_name, AT_REMOVEDIR) == 0) continue;
    const int child = ::openat(top.fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child < 0) Die("open for removal", e->d_name);
    stack.push_back({child, ::fdopendir(child)});
  }
}

int CapGet(__user_cap_data_struct data[2]) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  return static_cast<int>(::syscall(SYS_capget, &header, data));
}

int CapSet(__user_cap_data_struct data[2]) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  return static_cast<int>(::syscall(SYS_capset, &header, data));
}

}  // namespace

TestTree::TestTree() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/filemesh-test-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) Die("mkdtemp", templ);
  root_ = templ;
}

TestTree::~TestTree() {
  const int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    RemoveContents(fd);
    ::close(fd);
  }
  ::rmdir(root_.c_str());
}

void TestTree::Dir(const std::string& rel, unsigned mode) {
  if (::mkdir(Abs(rel).c_str(), mode) != 0) Die("mkdir", rel);
  Chmod(rel, mode);  // mkdir applies the umask
}

void TestTree::File(const std::string& rel, size_t size) {
  const int fd = ::open(Abs(rel).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) Die("create", rel);
  if (size > 0 && ::ftruncate(fd, static_cast<off_t>(size)) != 0) Die("truncate", rel);
  ::close(fd);
}

void TestTree::Symlink(const std::string& target, const std::string& rel) {
  if (::symlink(target.c_str(), Abs(rel).c_str()) != 0) Die("symlink", rel);
}

void TestTree::Fifo(const std::string& rel) {
  if (::mkfifo(Abs(rel).c_str(), 0644) != 0) Die("mkfifo", rel);
}

void TestTree::SetMtime(const std::string& rel, int64_t seconds) {
  struct timespec times[2];
  times[0].tv_sec = seconds;
  times[0].tv_nsec = 0;
  times[1] = times[0];
  if (::utimensat(AT_FDCWD, Abs(rel).c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    Die("utimensat", rel);
  }
}

void TestTree::Chmod(const std::string& rel, unsigned mode) {
  if (::chmod(Abs(rel).c_str(), mode) != 0) Die("chmod", rel);
}

void TestTree::Remove(const std::string& rel) {
  if (::unlink(Abs(rel).c_str()) != 0 && ::rmdir(Abs(rel).c_str()) != 0) Die("remove", rel);
}

std::string TestTree::DeepChain(const std::string& rel, const std::string& name, int depth,
                                const std::string& leaf) {
  int fd =
      ::open(rel.empty() ? root_.c_str() : Abs(rel).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) Die("open", rel);
  std::string path = rel;
  for (int i = 0; i < depth; ++i) {
    if (::mkdirat(fd, name.c_str(), 0755) != 0) Die("mkdirat", name);
    const int next = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (next < 0) Die("openat", name);
    ::close(fd);
    fd = next;
    path += (path.empty() ? "" : "/") + name;
  }
  const int file = ::openat(fd, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (file < 0) Die("create", leaf);
  ::close(file);
  ::close(fd);
  return path;
}

ScopedEnforcePermissions::ScopedEnforcePermissions() {
  if (::geteuid() != 0) return;
  __user_cap_data_struct data[2];
  if (CapGet(data) != 0) Die("capget", "");
  saved_effective_[0] = data[0].effective;
  saved_effective_[1] = data[1].effective;
  const uint32_t drop = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH);
  data[0].effective &= ~drop;
  if (CapSet(data) != 0) Die("capset", "");
  dropped_ = true;
}

ScopedEnforcePermissions::~ScopedEnforcePermissions() {
  if (!dropped_) return;
  __user_cap_data_struct data[2];
  if (CapGet(data) != 0) Die("capget", "");
  data[0].effective = saved_effective_[0];
  data[1].effective = saved_effective_[1];
  if (CapSet(data) != 0) Die("capset", "");
}

ScopedDescriptorLimit::ScopedDescriptorLimit(int spare) {
  struct rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) Die("getrlimit", "RLIMIT_NOFILE");
  saved_soft_ = limit.rlim_cur;
  std::vector<int> probes;
  for (int i = 0; i <= spare; ++i) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) Die("open", "/dev/null");
    probes.push_back(fd);
  }
  for (int fd : probes) ::close(fd);
  limit.rlim_cur = static_cast<rlim_t>(probes.back());
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) Die("setrlimit", "RLIMIT_NOFILE");
}

ScopedDescriptorLimit::~ScopedDescriptorLimit() {
  struct rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) Die("getrlimit", "RLIMIT_NOFILE");
  limit.rlim_cur = static_cast<rlim_t>(saved_soft_);
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) Die("setrlimit", "RLIMIT_NOFILE");
}

int OpenDescriptorCount() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) Die("opendir", "/proc/self/fd");
  int count = 0;
  while (struct dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // not the one reading it
}

}  // namespace filemesh::testing
