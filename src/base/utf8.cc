#include "base/utf8.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace filemesh::internal {

size_t Utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t c = b(0);
  if (c < 0x80) return 1;
  const auto cont = [&](size_t i, uint8_t lo = 0x80, uint8_t hi = 0xBF) {
    return i < s.size() && b(i) >= lo && b(i) <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

char32_t DecodeUtf8(std::string_view s, size_t length) {
  static constexpr uint8_t kLeadMask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  char32_t value = static_cast<uint8_t>(s[0]) & kLeadMask[length];
  for (size_t i = 1; i < length; ++i) value = (value << 6) | (static_cast<uint8_t>(s[i]) & 0x3F);
  return value;
}

bool IsValidUtf8(std::string_view bytes) {
  size_t i = 0;
  // Eight ASCII bytes at a time first: most names are ASCII, and the regex
  // matcher checks every name it reads.
  for (uint64_t word; i + sizeof(word) <= bytes.size(); i += sizeof(word)) {
    std::memcpy(&word, bytes.data() + i, sizeof(word));
    if ((word & 0x8080808080808080u) != 0) break;
  }
  while (i < bytes.size()) {
    // Fast path over ASCII, the common case for names.
    if (static_cast<uint8_t>(bytes[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(bytes.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

namespace {

template <typename OnInvalid>
void CopyValidUtf8(std::string_view bytes, std::string* out, OnInvalid on_invalid) {
  out->reserve(out->size() + bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t n = Utf8SequenceLength(bytes.substr(i));
    if (n == 0) {
      on_invalid(static_cast<uint8_t>(bytes[i]));
      ++i;
    } else {
      out->append(bytes.data() + i, n);
      i += n;
    }
  }
}

}  // namespace

void ReplaceInvalidUtf8(std::string_view bytes, std::string_view replacement, std::string* out) {
  CopyValidUtf8(bytes, out, [&](uint8_t) { out->append(replacement); });
}

void AppendDisplayForm(std::string_view bytes, std::string* out) {
  CopyValidUtf8(bytes, out, [&](uint8_t c) { AppendHexEscape(c, out); });
}

void AppendTerminalForm(std::string_view bytes, std::string* out) {
  size_t i = 0;
  while (i < bytes.size()) {
    const auto byte = static_cast<unsigned char>(bytes[i]);
    if (byte < 0x80) {
      if (byte < 0x20 || byte == 0x7f) {
        AppendHexEscape(byte, out);
      } else {
        out->push_back(static_cast<char>(byte));
      }
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(bytes.substr(i));
    if (length == 0) {
      AppendHexEscape(byte, out);
      ++i;
      continue;
    }
    const char32_t code_point = DecodeUtf8(bytes.substr(i), length);
    if (code_point <= 0x9f) {
      absl::StrAppend(out, "\\u", absl::Hex(static_cast<uint32_t>(code_point), absl::kZeroPad4));
    } else {
      out->append(bytes.substr(i, length));
    }
    i += length;
  }
}

void AppendHexEscape(unsigned char byte, std::string* out) {
  absl::StrAppend(out, "\\x", absl::Hex(byte, absl::kZeroPad2));
}

}  // namespace filemesh::internal
