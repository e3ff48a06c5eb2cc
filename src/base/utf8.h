// The one UTF-8 decoder of the library: names (fs), log values (service),
// JSON strings and query values (rest) all read UTF-8 through it. The public
// face of it is names.hpp (IsValidUtf8, DisplayForm).

#ifndef FILEMESH_SRC_BASE_UTF8_H_
#define FILEMESH_SRC_BASE_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace filemesh::internal {

// Length of the well-formed UTF-8 sequence at the start of `s` (1 to 4), or 0
// when `s` is empty or its first byte does not start one (RFC 3629; Table 3-7
// of Unicode: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t Utf8SequenceLength(std::string_view s);

// The code point of the `length`-byte sequence at the start of `s`, which
// Utf8SequenceLength accepted.
char32_t DecodeUtf8(std::string_view s, size_t length);

// True if `bytes` is well-formed UTF-8.
bool IsValidUtf8(std::string_view bytes);

// Appends `bytes` to `out` with each byte that is not part of a well-formed
// UTF-8 sequence replaced by `replacement`.
void ReplaceInvalidUtf8(std::string_view bytes, std::string_view replacement, std::string* out);

// Appends `bytes` to `out` with each byte that is not part of a well-formed
// UTF-8 sequence written as the text `\xHH` (lowercase hex): names.hpp's
// display form.
void AppendDisplayForm(std::string_view bytes, std::string* out);

// AppendDisplayForm that is also safe to show on a terminal: control
// characters (C0, DEL and the C1 range U+0080..U+009F, which terminals take
// as commands) are written as `\xHH` (C1 as `\u00HH`) too.
void AppendTerminalForm(std::string_view bytes, std::string* out);

// Appends `\xHH` (lowercase hex) for `byte`.
void AppendHexEscape(unsigned char byte, std::string* out);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_BASE_UTF8_H_
