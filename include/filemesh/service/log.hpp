// One log line per event, as key=value pairs, for services built on filemesh.
//
//   filemesh::LogEvent("grpc_listening", {{"address", "127.0.0.1:50051"}});
//   // ts=2026-11-27T10:00:00.123Z level=info event=grpc_listening address=127.0.0.1:50051
//
// Values with spaces, quotes, `=` or control characters are written quoted
// with escapes, so each event stays one line whatever a value holds (file
// names and request ids come from outside). Credentials never belong in a
// value: pass URLs through RedactUrl first.
//
// Lines go to stderr unless a sink is set. Thread safety: LogEvent may be
// called from any thread; each line is written whole.

#ifndef FILEMESH_SERVICE_LOG_HPP_
#define FILEMESH_SERVICE_LOG_HPP_

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace filemesh {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

using LogField = std::pair<std::string_view, std::string_view>;

// Writes one line: ts, level, event, then `fields` in order.
void LogEvent(LogLevel level, std::string_view event, std::initializer_list<LogField> fields);
inline void LogEvent(std::string_view event, std::initializer_list<LogField> fields) {
  LogEvent(LogLevel::kInfo, event, fields);
}

// Events below `level` are dropped (default kInfo).
void SetMinLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Sends every line (without its newline) to `sink` instead of stderr; an
// empty function restores stderr. For tests and for embedding applications.
void SetLogSink(std::function<void(std::string_view line)> sink);

// `url` with any password replaced by "***"
// ("amqp://user:***@host:5672/vhost"), in the user info and in the query's
// `password` and `sslpassword` parameters (libpq's
// "postgresql://host/db?password=***"). A comma-separated list of URLs (a
// broker cluster's) has each one's redacted.
std::string RedactUrl(std::string_view url);

}  // namespace filemesh

#endif  // FILEMESH_SERVICE_LOG_HPP_
