// UTF-8 helpers shared inside the library (the public ones are in names.hpp).

#ifndef FILEMESH_SRC_FS_UTF8_H_
#define FILEMESH_SRC_FS_UTF8_H_

#include <string>
#include <string_view>

namespace filemesh::internal {

// Appends `bytes` to `out` with each byte that is not part of a well-formed
// UTF-8 sequence replaced by `replacement`.
void ReplaceInvalidUtf8(std::string_view bytes, std::string_view replacement, std::string* out);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_UTF8_H_
