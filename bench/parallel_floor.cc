// filemesh_parallel_floor: filemesh_floor's walk on several threads.
//
//   filemesh_parallel_floor ROOT PATTERN [THREADS]
//
// The same work as filemesh_floor (openat(O_DIRECTORY | O_NOFOLLOW) of the
// whole path, raw getdents64, fnmatch(3) on names, no stat, hidden entries
// included, links never followed, DT_UNKNOWN tried as a directory) on THREADS
// threads (default: the CPUs it may run on). Each thread walks depth-first
// from a stack of its own and hands the older half of it to the shared stack
// when another thread waits for work, so threads touch the one lock only to
// share. Matches are printed in no set order, through a buffer per thread.
// It is the parallel reference bench/compare.sh measures `filemesh find`
// against: how fast a walk of names can be on this machine's cores.
//
// Exit status: 0, or 1 if some directory could not be read, 2 on a usage
// error.

#include <fcntl.h>
#include <fnmatch.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "floor_common.h"

namespace {

using filemesh_bench::Dirent64Head;
using filemesh_bench::IsDotOrDotDot;
using filemesh_bench::kNameOffset;
using filemesh_bench::Output;

constexpr unsigned char kDtUnknown = 0;
constexpr unsigned char kDtDir = 4;

class Walk {
 public:
  Walk(const char* pattern, int threads) : pattern_(pattern), threads_(threads) {}

  void Start(std::string root) { shared_.push_back(std::move(root)); }

  // One thread's part; returns 1 if a directory could not be read.
  int Work() {
    Output out("filemesh_parallel_floor");
    std::vector<std::string> local;
    auto buf = std::make_unique<char[]>(kBufSize);
    int status = 0;
    for (;;) {
      if (local.empty() && !Take(&local)) break;
      std::string dir = std::move(local.back());
      local.pop_back();
      status |= Read(dir, buf.get(), &out, &local);
      if (waiting_.load(std::memory_order_relaxed) > 0 && local.size() > 1) Share(&local);
    }
    return status;
  }

 private:
  static constexpr size_t kBufSize = 64 * 1024;

  // Waits for shared work; false when every thread waits (the walk is over).
  bool Take(std::vector<std::string>* local) {
    std::unique_lock<std::mutex> lock(mu_);
    if (shared_.empty()) {
      waiting_.fetch_add(1);
      if (waiting_.load() == threads_) {
        done_ = true;
        cv_.notify_all();
      }
      cv_.wait(lock, [this] { return done_ || !shared_.empty(); });
      waiting_.fetch_sub(1);
      if (shared_.empty()) return false;
    }
    local->push_back(std::move(shared_.back()));
    shared_.pop_back();
    return true;
  }

  // Hands the older (nearer the root, so larger) half of `local` over.
  void Share(std::vector<std::string>* local) {
    const size_t half = local->size() / 2;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < half; ++i) shared_.push_back(std::move((*local)[i]));
    }
    local->erase(local->begin(), local->begin() + static_cast<std::ptrdiff_t>(half));
    cv_.notify_all();
  }

  int Read(const std::string& dir, char* buf, Output* out, std::vector<std::string>* local) {
    const int fd = openat(AT_FDCWD, dir.empty() ? "/" : dir.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOTDIR || errno == ELOOP) return 0;
      std::fprintf(stderr, "filemesh_parallel_floor: %s: %s\n", dir.c_str(), std::strerror(errno));
      return 1;
    }
    int status = 0;
    for (;;) {
      const long n = syscall(SYS_getdents64, fd, buf, kBufSize);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "filemesh_parallel_floor: %s: %s\n", dir.c_str(),
                     std::strerror(errno));
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
        if (fnmatch(pattern_, name, 0) == 0) out->Line(dir, name, len);
        if (d.d_type == kDtDir || d.d_type == kDtUnknown) {
          std::string child;
          child.reserve(dir.size() + 1 + len);
          child.append(dir).push_back('/');
          child.append(name, len);
          local->push_back(std::move(child));
        }
      }
    }
    close(fd);
    return status;
  }

  const char* const pattern_;
  const int threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> shared_;  // guarded by mu_
  std::atomic<int> waiting_{0};      // threads in Take (changed under mu_)
  bool done_ = false;                // guarded by mu_
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s ROOT PATTERN [THREADS]\n", argv[0]);
    return 2;
  }
  std::string root = argv[1];
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  int threads = 0;
  if (argc == 4) {
    threads = std::atoi(argv[3]);
    if (threads < 1 || threads > 256) {
      std::fprintf(stderr, "%s: THREADS must be 1 to 256\n", argv[0]);
      return 2;
    }
  } else {
    cpu_set_t set;
    CPU_ZERO(&set);
    threads = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  }

  Walk walk(argv[2], threads);
  walk.Start(root == "/" ? std::string() : root);
  std::atomic<int> status{0};
  std::vector<std::thread> helpers;
  for (int i = 1; i < threads; ++i) helpers.emplace_back([&] { status |= walk.Work(); });
  status |= walk.Work();
  for (std::thread& t : helpers) t.join();
  return status.load();
}
