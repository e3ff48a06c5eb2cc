#include "fs/entry.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <string>

#include "filemesh/names.hpp"
#include "google/protobuf/io/coded_stream.h"

namespace filemesh::internal {
namespace {

// Sets a display-form string field and, when it differs, its raw bytes field.
template <typename SetDisplay, typename SetRaw>
void SetName(std::string_view bytes, SetDisplay set_display, SetRaw set_raw) {
  if (IsValidUtf8(bytes)) {
    set_display(std::string(bytes));
  } else {
    set_display(DisplayForm(bytes));
    set_raw(std::string(bytes));
  }
}

}  // namespace

int StatAt(int dir_fd, const char* name, struct stat* st) {
  return ::fstatat(dir_fd, name, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

v1::FileType FileTypeFromMode(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return v1::FILE_TYPE_FILE;
    case S_IFDIR:
      return v1::FILE_TYPE_DIRECTORY;
    case S_IFLNK:
      return v1::FILE_TYPE_SYMLINK;
    default:
      return v1::FILE_TYPE_OTHER;
  }
}

bool TargetLeavesRoot(std::string_view link_path, std::string_view target) {
  // Depth of the link's directory below the root, as the path reads.
  int64_t depth = 0;
  for (char c : link_path) depth += c == '/' ? 1 : 0;
  return TargetLeavesRootFrom(depth, target);
}

int64_t LexicalDepth(std::string_view clean_dir_path) {
  if (clean_dir_path.empty()) return 0;
  int64_t depth = 1;
  for (char c : clean_dir_path) depth += c == '/' ? 1 : 0;
  return depth;
}

std::optional<int64_t> DepthBelow(int root_fd, int dir_fd) {
  const auto real_path = [](int fd) -> std::optional<std::string> {
    char link[64];
    std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    char buf[PATH_MAX];
    const ssize_t n = ::readlink(link, buf, sizeof(buf));
    if (n <= 0 || static_cast<size_t>(n) >= sizeof(buf) || buf[0] != '/') return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  };
  const std::optional<std::string> root = real_path(root_fd);
  const std::optional<std::string> dir = real_path(dir_fd);
  if (!root.has_value() || !dir.has_value()) return std::nullopt;
  if (*dir == *root) return 0;
  const std::string prefix = *root == "/" ? "/" : *root + "/";
  if (dir->compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  return LexicalDepth(std::string_view(*dir).substr(prefix.size()));
}

bool TargetLeavesRootFrom(int64_t dir_depth, std::string_view target) {
  if (!target.empty() && target.front() == '/') return true;
  int64_t depth = dir_depth;
  size_t start = 0;
  while (start <= target.size()) {
    size_t end = target.find('/', start);
    if (end == std::string_view::npos) end = target.size();
    const std::string_view part = target.substr(start, end - start);
    if (part == "..") {
      if (--depth < 0) return true;
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    start = end + 1;
  }
  return false;
}

void FillPathEntry(std::string_view path, std::string_view name, uint8_t dtype,
                   v1::FileEntry* entry) {
  SetName(
      path, [&](std::string s) { entry->set_path(std::move(s)); },
      [&](std::string s) { entry->set_raw_path(std::move(s)); });
  SetName(
      name, [&](std::string s) { entry->set_name(std::move(s)); },
      [&](std::string s) { entry->set_raw_name(std::move(s)); });
  entry->set_type(FileTypeFromMode(DTTOIF(dtype)));
}

namespace {

// Whether a symlink's `target`, in the directory of `path`, is withheld.
bool Withheld(const Redaction& redaction, std::string_view path, std::string_view target) {
  if (!redaction.outside_targets || target.empty()) return false;
  if (redaction.depth_correction.has_value()) {
    int64_t depth = *redaction.depth_correction;
    for (char c : path) depth += c == '/' ? 1 : 0;
    return TargetLeavesRootFrom(depth, target);
  }
  // Where the link lies is unknown: no target that climbs is shown.
  return target.front() == '/' || target == ".." || target.substr(0, 3) == "../" ||
         target.find("/..") != std::string_view::npos;
}

// The target of symlink `name` in `dir_fd`, in `buf`; empty if it cannot be
// read (a link replaced since its stat).
std::string_view ReadTarget(int dir_fd, std::string_view name, char (&buf)[PATH_MAX]) {
  const std::string name_z(name);
  const ssize_t n = ::readlinkat(dir_fd, name_z.c_str(), buf, sizeof(buf));
  return std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace

void FillEntry(int dir_fd, std::string_view path, std::string_view name, const struct stat& st,
               const Redaction& redaction, v1::FileEntry* entry) {
  FillPathEntry(path, name, static_cast<uint8_t>(IFTODT(st.st_mode)), entry);
  entry->set_size(static_cast<uint64_t>(st.st_size));
  entry->set_mode(st.st_mode);
  entry->mutable_modified()->set_seconds(st.st_mtim.tv_sec);
  entry->mutable_modified()->set_nanos(static_cast<int32_t>(st.st_mtim.tv_nsec));
  if (S_ISLNK(st.st_mode)) {
    char buf[PATH_MAX];
    // A link replaced since the stat reads as an empty target: the entry is
    // still reported, as what the stat saw.
    const std::string_view text = ReadTarget(dir_fd, name, buf);
    if (Withheld(redaction, path, text)) {
      entry->set_symlink_target_redacted(true);
      // A symlink's size is its target's length: withheld too.
      entry->clear_size();
    } else if (!text.empty()) {
      SetName(
          text, [&](std::string s) { entry->set_symlink_target(std::move(s)); },
          [&](std::string s) { entry->set_raw_symlink_target(std::move(s)); });
    }
  }
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out.append(dir);
  if (!dir.empty()) out += '/';
  out.append(name);
  return out;
}

size_t RepeatedFieldBytes(const v1::FileEntry& entry) {
  const size_t size = entry.ByteSizeLong();
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(size) + size;
}

uint64_t ReportedSize(int dir_fd, std::string_view path, std::string_view name,
                      const struct stat& st, const Redaction& redaction) {
  if (!S_ISLNK(st.st_mode) || !redaction.outside_targets) return static_cast<uint64_t>(st.st_size);
  char buf[PATH_MAX];
  return Withheld(redaction, path, ReadTarget(dir_fd, name, buf))
             ? 0
             : static_cast<uint64_t>(st.st_size);
}

}  // namespace filemesh::internal
