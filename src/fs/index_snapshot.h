// FileIndex's snapshot on disk: a NameTree and what it was built of, so that
// a restarted service answers from the index at once and only catches up.
//
// Layout (little-endian): a 64-byte header — magic "FMINDEX\n", format
// version, the root's device and inode, whether one_file_system held, the
// as_of time (Unix nanoseconds), entry count, payload size, the payload's
// CRC-32 (zlib) and the header's own — then the payload: the tree in
// preorder, each entry as type, flags, name size, name, and for a directory
// its device, inode, entry inode and child count, its children following.
// A file that fails any check (size, magic, version, either CRC, a count or
// a name that does not add up) is refused whole: the index is then built.

#ifndef FILEMESH_SRC_FS_INDEX_SNAPSHOT_H_
#define FILEMESH_SRC_FS_INDEX_SNAPSHOT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fs/name_tree.h"

namespace filemesh::internal {

inline constexpr uint32_t kSnapshotVersion = 1;
// The file's name in its directory, and the name it is written under first.
inline constexpr char kSnapshotName[] = "filemesh-index.snapshot";

struct SnapshotInfo {
  uint64_t root_device = 0;
  uint64_t root_inode = 0;
  bool one_file_system = false;
  absl::Time as_of;
  uint64_t entries = 0;
};

// The snapshot of `tree` (the caller keeps it from changing meanwhile).
std::string EncodeSnapshot(const NameTree& tree, const SnapshotInfo& info);

// A snapshot of `payload` (a tree in the layout above, `entries` entries):
// the header, checksums included, then the payload. EncodeSnapshot's last
// step; a fuzzer's way to reach the payload's checks.
std::string SealSnapshot(std::string_view payload, const SnapshotInfo& info, uint64_t entries);

// Reads a snapshot into `tree` (a fresh NameTree); DataLoss naming what is
// wrong when the bytes are not a whole snapshot of this version.
absl::StatusOr<SnapshotInfo> DecodeSnapshot(std::string_view bytes, NameTree* tree);

// Writes `bytes` as `dir`/`name` atomically: into a temporary file in `dir`,
// flushed to disk, then renamed over `name`, and the directory flushed. A
// crash leaves the old file or the new one, never a part.
absl::Status WriteFileAtomically(const std::string& dir, const std::string& name,
                                 std::string_view bytes);

// Removes what WriteFileAtomically(dir, name, ...) left behind when its
// process died mid-write: the temporary files of writers that no longer
// exist. Those of live processes (writers sharing the directory) stay.
void RemoveLeftovers(const std::string& dir, const std::string& name);

// Reads `path` whole, at most `max_bytes` (else FailedPrecondition).
absl::StatusOr<std::string> ReadWholeFile(const std::string& path, uint64_t max_bytes);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_INDEX_SNAPSHOT_H_
