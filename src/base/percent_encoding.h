// Percent-encoding (RFC 3986 section 2.1) both ways: decoding for the AMQP URL
// parser and the HTTP server's request targets, encoding for URLs the
// library writes (a redacted AMQP URL, the command's requests to a gateway).

#ifndef FILEMESH_SRC_BASE_PERCENT_ENCODING_H_
#define FILEMESH_SRC_BASE_PERCENT_ENCODING_H_

#include <string>
#include <string_view>

namespace filemesh::internal {

// Decodes `in` into `out` (replacing it), '+' as a space when `plus_is_space`
// (HTML form encoding, used by query strings). False on a malformed escape
// (`%` not followed by two hex digits); `out` then holds a partial result.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out);

// `in` with every byte but the unreserved ones (A-Z a-z 0-9 - . _ ~), and
// those of `also_keep`, written as %HH (uppercase, as RFC 3986 recommends).
std::string PercentEncode(std::string_view in, std::string_view also_keep = "");

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_BASE_PERCENT_ENCODING_H_
