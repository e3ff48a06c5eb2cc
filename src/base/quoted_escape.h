// The escapes JSON strings and quoted log values share: `"` and `\` escaped,
// newline, carriage return and tab named. Each caller decides what becomes
// of the other control bytes (JSON: \u00HH; logs: \xHH).

#ifndef FILEMESH_SRC_BASE_QUOTED_ESCAPE_H_
#define FILEMESH_SRC_BASE_QUOTED_ESCAPE_H_

#include <string>

namespace filemesh::internal {

// Appends the escape for `c` and returns true if it has a named one.
inline bool AppendNamedEscape(char c, std::string* out) {
  switch (c) {
    case '"':
      out->append("\\\"");
      return true;
    case '\\':
      out->append("\\\\");
      return true;
    case '\n':
      out->append("\\n");
      return true;
    case '\r':
      out->append("\\r");
      return true;
    case '\t':
      out->append("\\t");
      return true;
    default:
      return false;
  }
}

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_BASE_QUOTED_ESCAPE_H_
