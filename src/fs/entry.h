// Building v1::FileEntry messages from what the kernel reports.

#ifndef FILEMESH_SRC_FS_ENTRY_H_
#define FILEMESH_SRC_FS_ENTRY_H_

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "filemesh/v1/filemesh.pb.h"

namespace filemesh::internal {

// lstat of `name` in `dir_fd` (never follows a link). Returns 0 or an errno.
int StatAt(int dir_fd, const char* name, struct stat* st);

// The v1::FileType for st_mode bits.
v1::FileType FileTypeFromMode(uint32_t mode);

// How a symlink's target is judged when targets that leave the root are
// withheld: the link's directory lies `depth_correction` levels deeper below
// the root than its path's text says (a path through a link such as
// `a/up -> ..` names a directory higher than it reads). Unknown (nullopt):
// every absolute target and every target with a ".." is withheld.
struct Redaction {
  bool outside_targets = false;
  std::optional<int64_t> depth_correction = 0;
};

// Fills `entry` for the entry `name` of directory `dir_fd`, whose path
// relative to the root is `path` (exact bytes) and whose lstat is `st`. Reads
// the target of a symlink; with `redaction.outside_targets`, a target that
// leaves the root (TargetLeavesRoot, from the link directory's real depth)
// is withheld (symlink_target_redacted). Sets raw_* only where the display
// form differs. A symlink whose target is withheld reports no size either
// (a symlink's size is its target's length).
void FillEntry(int dir_fd, std::string_view path, std::string_view name, const struct stat& st,
               const Redaction& redaction, v1::FileEntry* entry);

// The size FillEntry reports for that entry: st_size, or 0 for a symlink
// whose target is withheld (so that sorting by size cannot tell its length).
uint64_t ReportedSize(int dir_fd, std::string_view path, std::string_view name,
                      const struct stat& st, const Redaction& redaction);

// How many levels `dir_fd` lies below `root_fd`, from their real paths
// (/proc/self/fd); nullopt when it cannot be told (no /proc, a directory
// deleted or moved out of the root meanwhile).
std::optional<int64_t> DepthBelow(int root_fd, int dir_fd);

// The depth of the directory holding the entries of `clean_dir_path` as its
// text says: 0 for the root (""), 1 for "a", 2 for "a/b".
int64_t LexicalDepth(std::string_view clean_dir_path);

// True if the symlink at `link_path` (relative to the root) names a target
// outside the root: `target` is absolute, or its ".." components, read from
// the link's directory, climb above the root. Lexical: the components are
// not resolved (a target through another link is judged by its text).
bool TargetLeavesRoot(std::string_view link_path, std::string_view target);
// The same for a link whose directory lies `dir_depth` levels below the root.
bool TargetLeavesRootFrom(int64_t dir_depth, std::string_view target);

// Fills only the path, name and type of `entry` (see FillEntry); `dtype` is
// a DT_* value.
void FillPathEntry(std::string_view path, std::string_view name, uint8_t dtype,
                   v1::FileEntry* entry);

// Bytes `entry` adds to a response as an element of a repeated field (field
// numbers below 16): its tag, its length's varint and its own size.
size_t RepeatedFieldBytes(const v1::FileEntry& entry);

// Joins a directory path and a name with '/' ("" + name is name).
std::string JoinPath(std::string_view dir, std::string_view name);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_ENTRY_H_
