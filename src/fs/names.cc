#include "filemesh/names.hpp"

#include "base/utf8.h"

namespace filemesh {

bool IsValidUtf8(std::string_view bytes) { return internal::IsValidUtf8(bytes); }

std::string DisplayForm(std::string_view bytes) {
  std::string out;
  internal::AppendDisplayForm(bytes, &out);
  return out;
}

const std::string& ExactPath(const v1::FileEntry& entry) {
  return entry.raw_path().empty() ? entry.path() : entry.raw_path();
}

const std::string& ExactName(const v1::FileEntry& entry) {
  return entry.raw_name().empty() ? entry.name() : entry.raw_name();
}

}  // namespace filemesh
