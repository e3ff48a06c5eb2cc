// Percent-decoding (RFC 3986 section 2.1), shared by the AMQP URL parser and
// the HTTP server's request-target parser.

#ifndef FILEMESH_SRC_BASE_PERCENT_DECODE_H_
#define FILEMESH_SRC_BASE_PERCENT_DECODE_H_

#include <string>
#include <string_view>

namespace filemesh::internal {

inline int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes `in` into `out` (replacing it), '+' as a space when `plus_is_space`
// (HTML form encoding, used by query strings). False on a malformed escape
// (`%` not followed by two hex digits); `out` then holds a partial result.
inline bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else if (c != '%') {
      out->push_back(c);
    } else {
      if (i + 2 >= in.size()) return false;
      const int hi = HexDigitValue(in[i + 1]);
      const int lo = HexDigitValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return true;
}

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_BASE_PERCENT_DECODE_H_
