#include "rest/proto_json_values.h"

#include <locale.h>  // NOLINT(modernize-deprecated-headers): newlocale is POSIX
#include <stdlib.h>  // NOLINT(modernize-deprecated-headers): strtof_l, strtod_l

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <new>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "base/utf8.h"

namespace filemesh::internal {
namespace {

// google.protobuf.Timestamp's range in the JSON mapping.
constexpr int64_t kMinTimestampSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxTimestampSeconds = 253402300799;  // 9999-12-31T23:59:59Z

constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// Writes `value` (0-99) as two digits at `p`; returns the end.
char* TwoDigits(char* p, uint32_t value) {
  std::memcpy(p, &kDigitPairs[static_cast<size_t>(value) * 2], 2);
  return p + 2;
}

template <typename Int>
void AppendDecimal(Int value, bool quoted, JsonBuffer* out) {
  char* p = out->Reserve(24);
  if (quoted) *p++ = '"';
  p = std::to_chars(p, p + 21, value).ptr;
  if (quoted) *p++ = '"';
  out->Commit(p);
}

// For reading numbers back whatever the process's locale. protobuf formats
// and reads them in the current locale and then turns a ',' radix into
// '.', which comes to the same.
locale_t CLocale() {
  static const locale_t locale = newlocale(LC_ALL_MASK, "C", nullptr);
  return locale;
}

// NaN and the infinities are the strings "NaN", "Infinity", "-Infinity".
bool AppendNonFinite(double value, JsonBuffer* out) {
  if (std::isnan(value)) {
    out->Append("\"NaN\"");
  } else if (std::isinf(value)) {
    out->Append(value > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    return false;
  }
  return true;
}

// Code points at or above U+0080 that protobuf writes as \u escapes: C1
// controls and invisible format characters.
bool EscapedAboveAscii(uint32_t cp) {
  return cp < 0xa0 || cp == 0xad || (cp >= 0x600 && cp <= 0x603) || cp == 0x6dd || cp == 0x70f ||
         cp == 0x17b4 || cp == 0x17b5 || (cp >= 0x200b && cp <= 0x200f) ||
         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
         (cp >= 0x206a && cp <= 0x206f) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
         (cp >= 0x1d173 && cp <= 0x1d17a) || cp == 0xe0001 || (cp >= 0xe0020 && cp <= 0xe007f);
}

// \uXXXX (lowercase hex) at `p`; returns the end. AlphaNum formats the
// digits in a buffer of its own: no allocation on this path.
char* U16Escape(char* p, uint32_t unit) {
  const absl::AlphaNum digits(absl::Hex(unit, absl::kZeroPad4));
  p[0] = '\\';
  p[1] = 'u';
  std::memcpy(p + 2, digits.data(), 4);
  return p + 6;
}

// An ASCII byte that is not copied as is: short escapes for `"`, `\`, \b
// \t \n \f \r; \u escapes for other controls, DEL, `<` and `>`.
char* AsciiEscape(char* p, unsigned char c) {
  char short_form = 0;
  switch (c) {
    case '"':
      short_form = '"';
      break;
    case '\\':
      short_form = '\\';
      break;
    case '\b':
      short_form = 'b';
      break;
    case '\t':
      short_form = 't';
      break;
    case '\n':
      short_form = 'n';
      break;
    case '\f':
      short_form = 'f';
      break;
    case '\r':
      short_form = 'r';
      break;
    default:
      return U16Escape(p, c);
  }
  p[0] = '\\';
  p[1] = short_form;
  return p + 2;
}

// Bytes copied as they are: printable ASCII but `"`, `\`, `<` and `>`.
struct PlainBytes {
  constexpr PlainBytes() {
    for (int c = 0x20; c < 0x7f; ++c) plain[c] = c != '"' && c != '\\' && c != '<' && c != '>';
  }
  bool plain[256] = {};
};
constexpr PlainBytes kPlain;

}  // namespace

void JsonBuffer::Grow(size_t n) {
  // A page of a few dozen entries fits the first block.
  const size_t capacity = std::max({size_ + n, capacity_ * 2, size_t{4096}});
  void* grown = std::realloc(data_, capacity);
  if (grown == nullptr) throw std::bad_alloc();
  data_ = static_cast<char*>(grown);
  capacity_ = capacity;
}

void AppendProtoJsonInt(int32_t value, JsonBuffer* out) { AppendDecimal(value, false, out); }
void AppendProtoJsonInt(uint32_t value, JsonBuffer* out) { AppendDecimal(value, false, out); }
void AppendProtoJsonInt(int64_t value, JsonBuffer* out) { AppendDecimal(value, true, out); }
void AppendProtoJsonInt(uint64_t value, JsonBuffer* out) { AppendDecimal(value, true, out); }

bool AppendProtoJsonDouble(double value, JsonBuffer* out) {
  if (AppendNonFinite(value, out)) return true;
  if (CLocale() == nullptr) return false;
  char* start = out->Reserve(40);
  char* end = std::to_chars(start, start + 39, value, std::chars_format::general, 15).ptr;
  *end = '\0';
  if (strtod_l(start, nullptr, CLocale()) != value) {
    end = std::to_chars(start, start + 39, value, std::chars_format::general, 17).ptr;
  }
  out->Commit(end);
  return true;
}

bool AppendProtoJsonFloat(float value, JsonBuffer* out) {
  if (AppendNonFinite(value, out)) return true;
  if (CLocale() == nullptr) return false;
  char* start = out->Reserve(40);
  char* end = std::to_chars(start, start + 39, value, std::chars_format::general, 6).ptr;
  *end = '\0';
  char* parsed_end = nullptr;
  errno = 0;
  const float parsed = strtof_l(start, &parsed_end, CLocale());
  if (errno != 0 || parsed_end != end || parsed != value) {
    end = std::to_chars(start, start + 39, value, std::chars_format::general, 9).ptr;
  }
  out->Commit(end);
  return true;
}

bool AppendProtoJsonString(std::string_view text, JsonBuffer* out) {
  // At most six bytes out per byte in (a control byte as \u00XX).
  char* p = out->Reserve(text.size() * 6 + 2);
  *p++ = '"';
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char* const end = s + text.size();
  while (s < end) {
    if (kPlain.plain[*s]) {
      *p++ = static_cast<char>(*s++);
    } else if (*s < 0x80) {
      p = AsciiEscape(p, *s++);
    } else {
      const std::string_view rest(reinterpret_cast<const char*>(s), static_cast<size_t>(end - s));
      const size_t length = Utf8SequenceLength(rest);
      if (length == 0) return false;
      const uint32_t cp = DecodeUtf8(rest, length);
      if (!EscapedAboveAscii(cp)) {
        std::memcpy(p, s, length);
        p += length;
      } else if (cp < 0x10000) {
        p = U16Escape(p, cp);
      } else {  // as a UTF-16 surrogate pair
        p = U16Escape(p, 0xd800 + ((cp - 0x10000) >> 10));
        p = U16Escape(p, 0xdc00 + ((cp - 0x10000) & 0x3ff));
      }
      s += length;
    }
  }
  *p++ = '"';
  out->Commit(p);
  return true;
}

void AppendProtoJsonBytes(std::string_view bytes, JsonBuffer* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char* p = out->Reserve((bytes.size() + 2) / 3 * 4 + 2);
  *p++ = '"';
  const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])); };
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t group = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    *p++ = kAlphabet[group >> 18];
    *p++ = kAlphabet[(group >> 12) & 0x3f];
    *p++ = kAlphabet[(group >> 6) & 0x3f];
    *p++ = kAlphabet[group & 0x3f];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const uint32_t group = byte(i) << 16 | (two ? byte(i + 1) << 8 : 0U);
    *p++ = kAlphabet[group >> 18];
    *p++ = kAlphabet[(group >> 12) & 0x3f];
    *p++ = two ? kAlphabet[(group >> 6) & 0x3f] : '=';
    *p++ = '=';
  }
  *p++ = '"';
  out->Commit(p);
}

bool AppendProtoJsonTimestamp(int64_t seconds, int32_t nanos, JsonBuffer* out) {
  if (seconds < kMinTimestampSeconds || seconds > kMaxTimestampSeconds || nanos < 0 ||
      nanos > 999999999) {
    return false;
  }
  // The civil date of a day count from 1970-01-01 (proleptic Gregorian,
  // by 400-year eras counted from 0000-03-01).
  const int64_t days = (seconds >= 0 ? seconds : seconds - 86399) / 86400;
  const auto second_of_day = static_cast<uint32_t>(seconds - days * 86400);
  const int64_t shifted = days + 719468;
  const int64_t era = (shifted >= 0 ? shifted : shifted - 146096) / 146097;
  const auto day_of_era = static_cast<uint32_t>(shifted - era * 146097);
  const uint32_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const uint32_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const uint32_t month_index = (5 * day_of_year + 2) / 153;  // 0 is March
  const uint32_t day = day_of_year - (153 * month_index + 2) / 5 + 1;
  const uint32_t month = month_index < 10 ? month_index + 3 : month_index - 9;
  const auto year = static_cast<uint32_t>(year_of_era + era * 400 + (month <= 2 ? 1 : 0));

  // "YYYY-MM-DDTHH:MM:SS.fffffffffZ", quoted.
  char* p = out->Reserve(32);
  *p++ = '"';
  p = TwoDigits(p, year / 100);
  p = TwoDigits(p, year % 100);
  *p++ = '-';
  p = TwoDigits(p, month);
  *p++ = '-';
  p = TwoDigits(p, day);
  *p++ = 'T';
  p = TwoDigits(p, second_of_day / 3600);
  *p++ = ':';
  p = TwoDigits(p, second_of_day / 60 % 60);
  *p++ = ':';
  p = TwoDigits(p, second_of_day % 60);
  if (nanos != 0) {
    auto fraction = static_cast<uint32_t>(nanos);
    *p++ = '.';
    if (fraction % 1000000 == 0) {  // milliseconds
      fraction /= 1000000;
      *p++ = static_cast<char>('0' + fraction / 100);
      p = TwoDigits(p, fraction % 100);
    } else if (fraction % 1000 == 0) {  // microseconds
      fraction /= 1000;
      p = TwoDigits(p, fraction / 10000);
      p = TwoDigits(p, fraction / 100 % 100);
      p = TwoDigits(p, fraction % 100);
    } else {
      *p++ = static_cast<char>('0' + fraction / 100000000);
      p = TwoDigits(p, fraction / 1000000 % 100);
      p = TwoDigits(p, fraction / 10000 % 100);
      p = TwoDigits(p, fraction / 100 % 100);
      p = TwoDigits(p, fraction % 100);
    }
  }
  *p++ = 'Z';
  *p++ = '"';
  out->Commit(p);
  return true;
}

}  // namespace filemesh::internal
