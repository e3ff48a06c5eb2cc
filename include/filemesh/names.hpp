// How names, which are bytes on Linux, travel in protobuf string fields.
//
// A display form keeps every valid UTF-8 sequence of a name and writes each
// other byte as `\xHH` (lowercase hex). It is only for showing: when it
// differs from the name, FileEntry carries the exact bytes in its raw_*
// fields. See docs/names.md.

#ifndef FILEMESH_NAMES_HPP_
#define FILEMESH_NAMES_HPP_

#include <string>
#include <string_view>

#include "filemesh/v1/filemesh.pb.h"

namespace filemesh {

// True if `bytes` is well-formed UTF-8 (no overlongs, no surrogates, nothing
// above U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

// The display form of `bytes`; equal to `bytes` exactly when IsValidUtf8.
std::string DisplayForm(std::string_view bytes);

// The exact bytes of an entry's path and name, whichever field holds them.
const std::string& ExactPath(const v1::FileEntry& entry);
const std::string& ExactName(const v1::FileEntry& entry);

}  // namespace filemesh

#endif  // FILEMESH_NAMES_HPP_
