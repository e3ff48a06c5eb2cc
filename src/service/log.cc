#include "filemesh/service/log.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/absl_compat.h"
#include "base/quoted_escape.h"
#include "base/utf8.h"
#include "filemesh/internal/mutex.hpp"
#include "service/log_internal.h"

namespace filemesh {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};

// Where lines go; its lock also keeps whole lines from interleaving.
struct Output {
  internal::Mutex mu;
  std::function<void(std::string_view)> sink ABSL_GUARDED_BY(mu);
};

Output& TheOutput() {
  static auto* output = new Output;
  return *output;
}

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

// `value` as written after "key=": bare when it is plain printable ASCII,
// otherwise quoted. Inside quotes `"` and `\` are escaped, \n \r \t are
// named, other control bytes and bytes that are not UTF-8 are \xHH, and the
// characters some viewers take as line breaks (C1 controls, U+2028/2029) are
// \uHHHH; other valid UTF-8 is kept as it is.
void AppendValue(std::string_view value, std::string* out) {
  if (!NeedsQuotes(value)) {
    out->append(value);
    return;
  }
  out->push_back('"');
  size_t i = 0;
  while (i < value.size()) {
    const char c = value[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const size_t length = internal::Utf8SequenceLength(value.substr(i));
      const char32_t code_point = length == 0 ? 0 : internal::DecodeUtf8(value.substr(i), length);
      if (length == 0) {
        internal::AppendHexEscape(u, out);
        ++i;
      } else if (code_point <= 0x9f || code_point == 0x2028 || code_point == 0x2029) {
        absl::StrAppend(out, "\\u", absl::Hex(static_cast<uint32_t>(code_point), absl::kZeroPad4));
        i += length;
      } else {
        out->append(value.substr(i, length));
        i += length;
      }
      continue;
    }
    if (!internal::AppendNamedEscape(c, out)) {
      if (u < 0x20 || u == 0x7f) {
        internal::AppendHexEscape(u, out);
      } else {
        out->push_back(c);
      }
    }
    ++i;
  }
  out->push_back('"');
}

// Keys come from code, not from outside; still, anything but [A-Za-z0-9_.-]
// becomes '_' so that a key can never break the line's shape.
void AppendKey(std::string_view key, std::string* out) {
  if (key.empty()) {
    out->push_back('_');
    return;
  }
  for (char c : key) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '.' || c == '-';
    out->push_back(plain ? c : '_');
  }
}

void WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report it
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

namespace internal {

// The part up to the seconds is formatted once a second per thread:
// absl::FormatTime was a tenth of the cost of a gateway's access log line.
void AppendLogTimestamp(absl::Time now, std::string* out) {
  const int64_t millis = absl::ToUnixMillis(now);
  const int64_t second = millis >= 0 ? millis / 1000 : -((-millis + 999) / 1000);
  const int64_t milli = millis - second * 1000;
  thread_local int64_t cached_second = std::numeric_limits<int64_t>::min();
  thread_local std::string cached;
  if (second != cached_second) {
    cached =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
    cached_second = second;
  }
  out->append(cached);
  out->push_back('.');
  out->push_back(static_cast<char>('0' + milli / 100));
  out->push_back(static_cast<char>('0' + milli / 10 % 10));
  out->push_back(static_cast<char>('0' + milli % 10));
  out->push_back('Z');
}

std::string FormatLogLine(LogLevel level, std::string_view event,
                          std::initializer_list<LogField> fields) {
  std::string line;
  line.reserve(256);
  line.append("ts=");
  internal::AppendLogTimestamp(absl::Now(), &line);
  line.append(" level=");
  line.append(LevelName(level));
  line.append(" event=");
  AppendValue(event, &line);
  for (const LogField& field : fields) {
    line.push_back(' ');
    AppendKey(field.first, &line);
    line.push_back('=');
    AppendValue(field.second, &line);
  }
  return line;
}

}  // namespace internal

void LogEvent(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  std::string line = internal::FormatLogLine(level, event, fields);
  Output& output = TheOutput();
  internal::MutexLock lock(&output.mu);
  if (output.sink) {
    output.sink(line);
    return;
  }
  line.push_back('\n');
  WriteAll(STDERR_FILENO, line);
}

void SetMinLogLevel(LogLevel level) {
  min_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= min_level.load(std::memory_order_relaxed);
}

void SetLogSink(std::function<void(std::string_view line)> sink) {
  Output& output = TheOutput();
  internal::MutexLock lock(&output.mu);
  output.sink = std::move(sink);
}

namespace {

// Where the next URL of a comma-separated list starts: after a ',' that
// (past spaces) begins "scheme://", or npos. A comma elsewhere (a password's)
// is not a separator.
size_t NextUrlInList(std::string_view list, size_t from) {
  for (size_t comma = list.find(',', from); comma != std::string_view::npos;
       comma = list.find(',', comma + 1)) {
    size_t start = comma + 1;
    while (start < list.size() && list[start] == ' ') ++start;
    size_t i = start;
    while (i < list.size() && (std::isalnum(static_cast<unsigned char>(list[i])) ||
                               list[i] == '+' || list[i] == '-' || list[i] == '.')) {
      ++i;
    }
    if (i > start && list.substr(i, 3) == "://") return comma;
  }
  return std::string_view::npos;
}

std::string RedactOneUrl(std::string_view url);

}  // namespace

std::string RedactUrl(std::string_view url) {
  std::string out;
  size_t begin = 0;
  for (size_t comma = NextUrlInList(url, 0); comma != std::string_view::npos;
       comma = NextUrlInList(url, comma + 1)) {
    out.append(RedactOneUrl(url.substr(begin, comma - begin)));
    out.push_back(',');
    begin = comma + 1;
  }
  out.append(RedactOneUrl(url.substr(begin)));
  return out;
}

namespace {

std::string RedactOneUrl(std::string_view url) {
  // The user info starts after "scheme://" (or at the start, for
  // "user:pass@host") and ends at the last '@' before any query or fragment:
  // a password holding an unencoded '@' or '/' must not leave its tail in
  // the output. Erring towards hiding too much is fine here.
  size_t begin = 0;
  if (const size_t scheme_end = url.find("://"); scheme_end != std::string_view::npos) {
    begin = scheme_end + 3;
  }
  const size_t end = std::min(url.find_first_of("?#", begin), url.size());
  std::string out;
  const size_t at = url.substr(0, end).rfind('@');
  const size_t colon =
      at == std::string_view::npos || at < begin ? at : url.substr(0, at).find(':', begin);
  if (at != std::string_view::npos && at >= begin && colon != std::string_view::npos &&
      colon + 1 != at) {
    out.append(url.substr(0, colon + 1));
    out.append("***");
    out.append(url.substr(at, end - at));
  } else {
    out.append(url.substr(0, end));
  }
  // A password may ride the query too (libpq's "?password=...",
  // "sslpassword=..."): each such value is hidden.
  std::string_view rest = url.substr(end);
  if (rest.empty() || rest.front() != '?') return out.append(rest);
  const size_t fragment = std::min(rest.find('#'), rest.size());
  out.push_back('?');
  bool first = true;
  for (absl::string_view pair :
       absl::StrSplit(internal::AbslView(rest.substr(1, fragment - 1)), '&')) {
    if (!first) out.push_back('&');
    first = false;
    const absl::string_view key = pair.substr(0, pair.find('='));
    if (key.size() < pair.size() &&
        (absl::EqualsIgnoreCase(key, "password") || absl::EqualsIgnoreCase(key, "sslpassword"))) {
      absl::StrAppend(&out, key, "=***");
    } else {
      absl::StrAppend(&out, pair);
    }
  }
  out.append(rest.substr(fragment));
  return out;
}

}  // namespace

}  // namespace filemesh
