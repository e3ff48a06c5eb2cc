#include "fs/change_watcher.h"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "filemesh/internal/mutex.hpp"
#include "fs/errno_status.h"
#include "fs/unique_fd.h"

namespace filemesh::internal {
namespace {

// Read buffer of either kind: many reports per read().
constexpr size_t kReadBuffer = size_t{64} << 10;

// Reads `fd` (non-blocking) into `buffer` until nothing is queued, handing
// each read's bytes to `parse`; stops at the first error either gives.
template <typename Parse>
absl::Status ReadQueued(int fd, char* buffer, const char* what, Parse&& parse) {
  for (;;) {
    const ssize_t n = ::read(fd, buffer, kReadBuffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return absl::OkStatus();
      return ErrnoToStatus(errno, "read", what);
    }
    if (n == 0) return absl::OkStatus();
    if (absl::Status parsed = parse(static_cast<size_t>(n)); !parsed.ok()) return parsed;
  }
}

// ---------------------------------------------------------------------------
// inotify

constexpr uint32_t kInotifyMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                                  IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR |
                                  IN_EXCL_UNLINK;
constexpr uint32_t kInotifyEntryChanges =
    IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF;

class InotifyWatcher : public ChangeWatcher {
 public:
  InotifyWatcher(UniqueFd fd, size_t max_watches)
      : fd_(std::move(fd)), max_watches_(max_watches), buffer_(new char[kReadBuffer]) {}

  const char* mode() const override { return "inotify"; }
  int fd() const override { return fd_.get(); }

  bool Watch(int dir_fd, uint32_t tag) override {
    MutexLock lock(&mu_);
    if (tag_of_wd_.size() >= max_watches_) return false;
    // The directory is open already: watch it through its descriptor, so
    // what is watched is what was opened, whatever its path is now.
    const std::string path = absl::StrCat("/proc/self/fd/", dir_fd);
    const int wd = ::inotify_add_watch(fd_.get(), path.c_str(), kInotifyMask);
    if (wd < 0) return false;  // ENOSPC: the system's limit; or gone meanwhile
    // The same directory watched again (moved, read again): the newest tag.
    if (auto it = tag_of_wd_.find(wd); it != tag_of_wd_.end()) wd_of_tag_.erase(it->second);
    tag_of_wd_[wd] = tag;
    wd_of_tag_[tag] = wd;
    return true;
  }

  void Unwatch(uint32_t tag) override {
    MutexLock lock(&mu_);
    auto it = wd_of_tag_.find(tag);
    if (it == wd_of_tag_.end()) return;
    const int wd = it->second;
    wd_of_tag_.erase(it);
    tag_of_wd_.erase(wd);
    ::inotify_rm_watch(fd_.get(), wd);  // may be gone already (EINVAL)
  }

  size_t watches() const override {
    MutexLock lock(&mu_);
    return tag_of_wd_.size();
  }

  absl::Status Read(std::vector<Change>* out) override {
    return ReadQueued(fd_.get(), buffer_.get(), "inotify", [&](size_t n) {
      MutexLock lock(&mu_);
      for (size_t at = 0; at < n;) {
        inotify_event event;
        std::memcpy(&event, buffer_.get() + at, sizeof(event));
        const char* name = buffer_.get() + at + sizeof(event);
        at += sizeof(event) + event.len;
        Convert(event, event.len == 0 ? "" : name, out);
      }
      return absl::OkStatus();
    });
  }

 private:
  void Convert(const inotify_event& event, const char* name, std::vector<Change>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if ((event.mask & IN_Q_OVERFLOW) != 0) {
      Change& change = out->emplace_back();
      change.overflow = true;
      return;
    }
    auto it = tag_of_wd_.find(event.wd);
    if (it == tag_of_wd_.end()) return;  // unwatched meanwhile
    const uint32_t tag = it->second;
    if ((event.mask & IN_IGNORED) != 0) {
      // The kernel dropped the watch (the directory was deleted or its
      // filesystem unmounted): the parent's report tells the index.
      wd_of_tag_.erase(tag);
      tag_of_wd_.erase(it);
      return;
    }
    Change& change = out->emplace_back();
    change.tag = tag;
    change.is_directory = (event.mask & IN_ISDIR) != 0;
    change.attributes =
        (event.mask & (IN_ATTRIB | IN_MODIFY)) != 0 && (event.mask & kInotifyEntryChanges) == 0;
    // A report about the directory itself (deleted, moved, unmounted, its
    // own attributes) names no entry.
    if ((event.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) == 0) change.name = name;
  }

  const UniqueFd fd_;
  const size_t max_watches_;
  std::unique_ptr<char[]> buffer_;  // Read's only
  mutable Mutex mu_;
  absl::flat_hash_map<int, uint32_t> tag_of_wd_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint32_t, int> wd_of_tag_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------
// fanotify

constexpr uint64_t kFanotifyMask =
    FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_ATTRIB | FAN_MODIFY | FAN_ONDIR;
// The kernel merges reports about one name while they wait: a merged report
// with any of these is about the entries, whatever else it says.
constexpr uint64_t kFanotifyEntryChanges =
    FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_DELETE_SELF | FAN_MOVE_SELF;

// The fsid statfs gives, as the 8 bytes fanotify reports.
uint64_t FsidOf(int fd) {
  struct statfs fs;
  if (::fstatfs(fd, &fs) != 0) return 0;
  uint64_t fsid = 0;
  static_assert(sizeof(fs.f_fsid) == sizeof(fsid));
  std::memcpy(&fsid, &fs.f_fsid, sizeof(fsid));
  return fsid;
}

class FanotifyWatcher : public ChangeWatcher {
 public:
  explicit FanotifyWatcher(UniqueFd fd) : fd_(std::move(fd)), buffer_(new char[kReadBuffer]) {}

  const char* mode() const override { return "fanotify"; }
  int fd() const override { return fd_.get(); }

  // The first directory of each filesystem gets a mark for its filesystem.
  bool Watch(int dir_fd, uint32_t /*tag*/) override { return Mark(dir_fd) == 0; }

  // Marks `dir_fd`'s filesystem unless marked already: 0 or an errno.
  int Mark(int dir_fd) {
    const uint64_t fsid = FsidOf(dir_fd);
    MutexLock lock(&mu_);
    if (mounts_.contains(fsid)) return 0;
    if (mounts_.size() >= kMaxFilesystems) return ENOSPC;
    if (::fanotify_mark(fd_.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, kFanotifyMask, dir_fd,
                        nullptr) != 0) {
      return errno;
    }
    UniqueFd mount(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
    if (!mount.valid()) return errno;
    mounts_.emplace(fsid, std::move(mount));
    return 0;
  }

  void Unwatch(uint32_t /*tag*/) override {}
  size_t watches() const override { return 0; }

  absl::Status Read(std::vector<Change>* out) override {
    identified_.clear();
    return ReadQueued(fd_.get(), buffer_.get(), "fanotify", [&](size_t n) {
      for (size_t at = 0; at < n;) {
        fanotify_event_metadata meta;
        std::memcpy(&meta, buffer_.get() + at, sizeof(meta));
        if (meta.event_len < sizeof(meta) || at + meta.event_len > n) {
          return absl::InternalError("fanotify: a malformed report");
        }
        Convert(meta, buffer_.get() + at, out);
        at += meta.event_len;
      }
      return absl::OkStatus();
    });
  }

 private:
  static constexpr size_t kMaxFilesystems = 64;

  void Convert(const fanotify_event_metadata& meta, const char* event, std::vector<Change>* out) {
    if ((meta.mask & FAN_Q_OVERFLOW) != 0) {
      out->emplace_back().overflow = true;
      return;
    }
    // Info records follow the metadata; the one this mode gives is the
    // directory's fid, with the entry's name after the handle.
    for (size_t at = meta.metadata_len;
         at + sizeof(fanotify_event_info_header) <= meta.event_len;) {
      fanotify_event_info_header header;
      std::memcpy(&header, event + at, sizeof(header));
      if (header.len == 0 || at + header.len > meta.event_len) return;
      if (header.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME ||
          header.info_type == FAN_EVENT_INFO_TYPE_DFID) {
        ConvertFid(meta, event + at, header, out);
      }
      at += header.len;
    }
  }

  void ConvertFid(const fanotify_event_metadata& meta, const char* record,
                  const fanotify_event_info_header& header, std::vector<Change>* out) {
    // fanotify_event_info_fid: header, fsid, then a struct file_handle.
    const size_t handle_at = sizeof(fanotify_event_info_header) + sizeof(__kernel_fsid_t);
    if (handle_at + sizeof(file_handle) > header.len) return;
    uint64_t fsid = 0;
    std::memcpy(&fsid, record + sizeof(fanotify_event_info_header), sizeof(fsid));
    file_handle head;
    std::memcpy(&head, record + handle_at, sizeof(head));
    const size_t handle_size = sizeof(file_handle) + head.handle_bytes;
    if (handle_at + handle_size > header.len) return;
    std::string name;
    if (header.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
      const char* text = record + handle_at + handle_size;
      name.assign(text, strnlen(text, header.len - handle_at - handle_size));
      if (name == ".") name.clear();
    }
    // The directory, by its handle: where it is in the tree is the index's
    // business, by device and inode.
    // Reports come in bursts about one directory (writes to its files): its
    // handle is opened once a Read.
    std::string handle(record + handle_at, handle_size);
    std::string key = absl::StrCat(fsid, ":", handle);
    auto known = identified_.find(key);
    if (known == identified_.end()) {
      struct stat st;
      const Identified identified = Identify(fsid, &handle, &st);
      known = identified_.emplace(std::move(key), std::make_pair(identified, st)).first;
    }
    const auto& [identified, st] = known->second;
    switch (identified) {
      case Identified::kFound:
        break;
      case Identified::kGone:
        return;  // its parent's report tells, if it was ours
      case Identified::kRefused:
        out->emplace_back().overflow = true;  // as good as lost: read everything again
        return;
    }
    Change& change = out->emplace_back();
    change.by_identity = true;
    change.device = st.st_dev;
    change.inode = st.st_ino;
    change.name = std::move(name);
    change.is_directory = (meta.mask & FAN_ONDIR) != 0;
    change.attributes =
        (meta.mask & (FAN_ATTRIB | FAN_MODIFY)) != 0 && (meta.mask & kFanotifyEntryChanges) == 0;
  }

  // Opens the handle (O_PATH) on its filesystem and reads its identity:
  // kFound, kGone (a directory removed since, or on a filesystem not ours),
  // or kRefused (the process may not open handles, CAP_DAC_READ_SEARCH, or
  // the kernel failed otherwise: what changed cannot be told).
  enum class Identified { kFound, kGone, kRefused };
  Identified Identify(uint64_t fsid, std::string* handle, struct stat* st) {
    int mount_fd;
    {
      MutexLock lock(&mu_);
      auto it = mounts_.find(fsid);
      if (it == mounts_.end()) return Identified::kGone;
      mount_fd = it->second.get();
    }
    UniqueFd dir(::open_by_handle_at(mount_fd, reinterpret_cast<file_handle*>(handle->data()),
                                     O_PATH | O_CLOEXEC));
    if (!dir.valid()) {
      return errno == ESTALE || errno == ENOENT ? Identified::kGone : Identified::kRefused;
    }
    return ::fstat(dir.get(), st) == 0 ? Identified::kFound : Identified::kGone;
  }

  const UniqueFd fd_;
  std::unique_ptr<char[]> buffer_;  // Read's only
  // Read's only: the directories its reports named, by fsid and handle.
  absl::flat_hash_map<std::string, std::pair<Identified, struct stat>> identified_;
  mutable Mutex mu_;
  // A descriptor on each marked filesystem, by fsid, to open handles with.
  absl::flat_hash_map<uint64_t, UniqueFd> mounts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<ChangeWatcher>> NewFanotifyWatcher(int root_fd) {
  UniqueFd fd(::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME,
                              O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoToStatus(errno, "fanotify_init", "FAN_REPORT_DFID_NAME");
  auto watcher = std::make_unique<FanotifyWatcher>(std::move(fd));
  // Marking the root's filesystem now says whether marks are allowed at all.
  if (const int error = watcher->Mark(root_fd); error != 0) {
    return ErrnoToStatus(error, "fanotify_mark", "the root's filesystem");
  }
  // Reports name directories by handle: opening one needs
  // CAP_DAC_READ_SEARCH, which a process may lack while it has
  // CAP_SYS_ADMIN. Tried once on the root's own handle.
  std::string bytes(sizeof(file_handle) + MAX_HANDLE_SZ, '\0');
  auto* root_handle = reinterpret_cast<file_handle*>(bytes.data());
  root_handle->handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  if (::name_to_handle_at(root_fd, "", root_handle, &mount_id, AT_EMPTY_PATH) != 0) {
    return ErrnoToStatus(errno, "name_to_handle_at", "the root");
  }
  UniqueFd opened(::open_by_handle_at(root_fd, root_handle, O_PATH | O_CLOEXEC));
  if (!opened.valid()) return ErrnoToStatus(errno, "open_by_handle_at", "the root's handle");
  return std::unique_ptr<ChangeWatcher>(std::move(watcher));
}

absl::StatusOr<std::unique_ptr<ChangeWatcher>> NewInotifyWatcher(size_t max_watches) {
  UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd.valid()) return ErrnoToStatus(errno, "inotify_init1", "");
  return std::unique_ptr<ChangeWatcher>(new InotifyWatcher(std::move(fd), max_watches));
}

}  // namespace filemesh::internal
