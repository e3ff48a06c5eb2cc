// Reads a directory's entries with getdents64: names and d_type, no stat.

#ifndef FILEMESH_SRC_FS_DIR_READER_H_
#define FILEMESH_SRC_FS_DIR_READER_H_

#include <cstdint>
#include <memory>
#include <string_view>

namespace filemesh::internal {

struct DirEntry {
  std::string_view name;  // valid until the next call to Next()
  uint8_t type;           // DT_* from <dirent.h>; DT_UNKNOWN on some filesystems
  uint64_t inode;         // d_ino (for a mount point, the inode it covers)
};

// Not thread-safe; one per thread. The buffer is reused across directories,
// so a walk allocates nothing per entry.
class DirReader {
 public:
  DirReader();
  ~DirReader();
  DirReader(const DirReader&) = delete;
  DirReader& operator=(const DirReader&) = delete;

  // Starts reading `fd` (not owned) from its current offset.
  void Reset(int fd);

  // The next entry other than "." and "..": true and fills `entry`, or false at
  // the end or on an error (then error() is the errno).
  bool Next(DirEntry* entry);

  int error() const { return error_; }

 private:
  static constexpr size_t kBufferSize = size_t{64} << 10;
  std::unique_ptr<char[]> buffer_;
  int fd_ = -1;
  size_t pos_ = 0;
  size_t end_ = 0;
  int error_ = 0;
  bool eof_ = false;
};

// Maps a d_type or the S_IFMT bits of st_mode to a DT_* value.
uint8_t DirentTypeFromMode(uint32_t mode);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_DIR_READER_H_
