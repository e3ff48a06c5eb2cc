// FileIndex snapshots as a damaged or hostile file may hold them: the input
// is an entry count (its first 8 bytes) and a payload, sealed with a valid
// header and checksums so that the payload's own checks are what is reached.
// DecodeSnapshot never crashes; a tree it accepts encodes to a snapshot that
// decodes again, with as many entries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "fs/index_snapshot.h"
#include "fs/name_tree.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t entries;
  std::memcpy(&entries, data, sizeof(entries));
  const std::string_view payload(reinterpret_cast<const char*>(data) + 8, size - 8);
  filemesh::internal::SnapshotInfo info;
  const std::string sealed = filemesh::internal::SealSnapshot(payload, info, entries);
  filemesh::internal::NameTree tree;
  auto decoded = filemesh::internal::DecodeSnapshot(sealed, &tree);
  if (!decoded.ok()) return 0;
  if (tree.size() != decoded->entries + 1) std::abort();
  filemesh::internal::NameTree again;
  auto redecoded =
      filemesh::internal::DecodeSnapshot(filemesh::internal::EncodeSnapshot(tree, info), &again);
  if (!redecoded.ok() || redecoded->entries != decoded->entries) std::abort();
  return 0;
}
