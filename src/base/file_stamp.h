// What tells a file was replaced or changed without reading it: its device,
// inode, size and modification time. For files read again when they change
// (certificates, API keys), checked at most once a second.

#ifndef FILEMESH_SRC_BASE_FILE_STAMP_H_
#define FILEMESH_SRC_BASE_FILE_STAMP_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace filemesh::internal {

struct FileStamp {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  int64_t modified_ns = 0;

  // The stamp of `path` now (all zero when it cannot be stat'ed, or is "").
  static FileStamp Of(const std::string& path) {
    FileStamp stamp;
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return stamp;
    stamp.device = st.st_dev;
    stamp.inode = st.st_ino;
    stamp.size = st.st_size;
    stamp.modified_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    return stamp;
  }

  bool operator==(const FileStamp& other) const {
    return device == other.device && inode == other.inode && size == other.size &&
           modified_ns == other.modified_ns;
  }
  bool operator!=(const FileStamp& other) const { return !(*this == other); }
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_BASE_FILE_STAMP_H_
