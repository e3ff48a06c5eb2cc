// ChangeWatcher: how FileIndex hears of changes under its root, from the
// kernel's fanotify (one mark for a whole filesystem, events naming the
// directory by its file handle) or inotify (a watch per directory, events
// naming it by watch descriptor). Both are reduced to one report: "the
// entries of this directory changed" (or "this entry's attributes changed"),
// or "reports were lost". Which directory is meant the index resolves by the
// directory's identity (fanotify) or by the tag it gave Watch (inotify).

#ifndef FILEMESH_SRC_FS_CHANGE_WATCHER_H_
#define FILEMESH_SRC_FS_CHANGE_WATCHER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace filemesh::internal {

struct Change {
  // Reports were lost (the kernel's queue overflowed): anything may have
  // changed.
  bool overflow = false;
  // The directory the report is about: by tag (inotify: what Watch was
  // given) or by identity (fanotify: device and inode).
  bool by_identity = false;
  uint32_t tag = 0;
  uint64_t device = 0;
  uint64_t inode = 0;
  // The entry of that directory the report names; empty when the report is
  // about the directory itself.
  std::string name;
  // The entry named is a directory.
  bool is_directory = false;
  // Only attributes changed (mode, owner, times, size: written), not the
  // entries.
  bool attributes = false;
};

class ChangeWatcher {
 public:
  virtual ~ChangeWatcher() = default;

  // "fanotify" or "inotify".
  virtual const char* mode() const = 0;
  // Readable when reports wait (for poll).
  virtual int fd() const = 0;

  // Called for each directory the index reads, before it reads it, with the
  // directory open and the index's tag for it. False when it is not watched
  // (inotify: out of watches). Thread-safe.
  virtual bool Watch(int dir_fd, uint32_t tag) = 0;
  // The directory tagged `tag` left the index. Thread-safe.
  virtual void Unwatch(uint32_t tag) = 0;
  // Directories watched (inotify), or 0.
  virtual size_t watches() const = 0;

  // Reads what is queued without waiting; appends one Change per report
  // about the index's tree (some reports name directories elsewhere; they
  // are skipped when the watcher can tell). Errors: the kernel's.
  virtual absl::Status Read(std::vector<Change>* out) = 0;
};

// fanotify with FAN_REPORT_DFID_NAME and a filesystem mark on `root_fd`'s
// filesystem; PermissionDenied (or the kernel's error) where not allowed.
// Reported handles are opened on a descriptor of their filesystem that the
// watcher keeps (a duplicate of the first directory Watch saw there).
absl::StatusOr<std::unique_ptr<ChangeWatcher>> NewFanotifyWatcher(int root_fd);

// inotify, at most `max_watches` watches.
absl::StatusOr<std::unique_ptr<ChangeWatcher>> NewInotifyWatcher(size_t max_watches);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_CHANGE_WATCHER_H_
