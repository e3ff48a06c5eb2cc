// DirectoryFds: the descriptor policy of one walk. A directory is opened by a
// path relative to a base directory that is still open. While the walk holds
// fewer than kMaxHeldFds directory fds, that base is its parent (one name for
// the kernel to resolve); past that, the relative part grows until it is
// longer than kRebaseBytes, when the walk re-bases on the parent's fd, so
// depth is unlimited while few fds stay open.

#ifndef FILEMESH_SRC_FS_DIRECTORY_FDS_H_
#define FILEMESH_SRC_FS_DIRECTORY_FDS_H_

#include <atomic>
#include <cstddef>
#include <memory>

#include "fs/unique_fd.h"

namespace filemesh::internal {

class DirectoryFds {
 public:
  static constexpr size_t kRebaseBytes = 2048;
  static constexpr int kMaxHeldFds = 16;

  // `fd`, owned, as a shareable base for children; counted while it is open.
  std::shared_ptr<const UniqueFd> Hold(int fd) {
    auto held = std::make_shared<const Held>(fd, &held_);
    return std::shared_ptr<const UniqueFd>(held, &held->fd);
  }

  // Whether the children of a directory whose path relative to its base is
  // `relative_bytes` long open relative to the directory itself.
  bool ShouldRebase(size_t relative_bytes) const {
    return relative_bytes > kRebaseBytes || held_.load(std::memory_order_relaxed) < kMaxHeldFds;
  }

 private:
  struct Held {
    Held(int open_fd, std::atomic<int>* counter) : fd(open_fd), count(counter) {
      counter->fetch_add(1, std::memory_order_relaxed);
    }
    ~Held() { count->fetch_sub(1, std::memory_order_relaxed); }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;

    const UniqueFd fd;
    std::atomic<int>* const count;
  };

  std::atomic<int> held_{0};  // directory fds open (the start's not counted)
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_DIRECTORY_FDS_H_
