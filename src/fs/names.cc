#include "filemesh/names.hpp"

#include <cstdint>

#include "fs/utf8.h"

namespace filemesh {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0 if the
// first byte does not start one (RFC 3629, Table 3-7 of Unicode).
size_t Utf8SequenceLength(std::string_view s) {
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

}  // namespace

bool IsValidUtf8(std::string_view bytes) {
  size_t i = 0;
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

namespace internal {

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

void ReplaceInvalidUtf8(std::string_view bytes, std::string_view replacement, std::string* out) {
  CopyValidUtf8(bytes, out, [&](uint8_t) { out->append(replacement); });
}

}  // namespace internal

std::string DisplayForm(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  internal::CopyValidUtf8(bytes, &out, [&](uint8_t c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  });
  return out;
}

const std::string& ExactPath(const v1::FileEntry& entry) {
  return entry.raw_path().empty() ? entry.path() : entry.raw_path();
}

const std::string& ExactName(const v1::FileEntry& entry) {
  return entry.raw_name().empty() ? entry.name() : entry.raw_name();
}

}  // namespace filemesh
