#include "fs/dir_reader.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace filemesh::internal {
namespace {

// The kernel's record layout for getdents64 (glibc 2.36 has no wrapper):
// u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, then the NUL-terminated name.
constexpr size_t kRecLenOffset = 16;
constexpr size_t kTypeOffset = 18;
constexpr size_t kNameOffset = 19;

}  // namespace

DirReader::DirReader() : buffer_(new char[kBufferSize]) {}
DirReader::~DirReader() = default;

void DirReader::Reset(int fd) {
  fd_ = fd;
  pos_ = end_ = 0;
  error_ = 0;
  eof_ = false;
}

bool DirReader::Next(DirEntry* entry) {
  for (;;) {
    if (pos_ >= end_) {
      if (eof_ || error_ != 0) return false;
      const long n = ::syscall(SYS_getdents64, fd_, buffer_.get(), kBufferSize);
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        return false;
      }
      if (n == 0) {
        eof_ = true;
        return false;
      }
      pos_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const char* record = buffer_.get() + pos_;
    uint16_t reclen;
    std::memcpy(&reclen, record + kRecLenOffset, sizeof(reclen));
    pos_ += reclen;
    const char* name = record + kNameOffset;
    // "." and ".." are never entries of interest.
    if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
    entry->name = std::string_view(name);
    entry->type = static_cast<uint8_t>(record[kTypeOffset]);
    std::memcpy(&entry->inode, record, sizeof(entry->inode));
    return true;
  }
}

uint8_t DirentTypeFromMode(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return DT_REG;
    case S_IFDIR:
      return DT_DIR;
    case S_IFLNK:
      return DT_LNK;
    case S_IFIFO:
      return DT_FIFO;
    case S_IFSOCK:
      return DT_SOCK;
    case S_IFCHR:
      return DT_CHR;
    case S_IFBLK:
      return DT_BLK;
    default:
      return DT_UNKNOWN;
  }
}

}  // namespace filemesh::internal
