// Debian's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0, so
// absl::string_view is its own type, not std::string_view. filemesh code uses
// std::string_view and crosses over here.

#ifndef FILEMESH_SRC_BASE_ABSL_COMPAT_H_
#define FILEMESH_SRC_BASE_ABSL_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace filemesh::internal {

inline absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view StdView(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_BASE_ABSL_COMPAT_H_
