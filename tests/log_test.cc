// LogEvent's line format, its quoting of values that come from outside,
// RedactUrl, the sink and the level filter, and the lines the rpc layer
// writes (gRPC listening, calls with log_calls, breaker changes).

#include "filemesh/service/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "captured_log.h"
#include "filemesh/rpc/clients.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc_test_support.h"
#include "service/log_internal.h"

namespace filemesh {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

// The part of a line after "ts=... level=... ".
std::string AfterLevel(const std::string& line) {
  const size_t event = line.find(" event=");
  return event == std::string::npos ? line : line.substr(event + 1);
}

// The single line `value` gives as field "v".
std::string Formatted(std::string_view value) {
  CapturedLog log;
  LogEvent("e", {{"v", value}});
  const std::vector<std::string> lines = log.lines();
  EXPECT_EQ(lines.size(), 1u);
  if (lines.empty()) return "";
  const std::string rest = AfterLevel(lines[0]);
  EXPECT_TRUE(absl::StartsWith(rest, "event=e v=")) << rest;
  return rest.substr(std::string("event=e v=").size());
}

TEST(LogTest, LineHasUtcMillisecondTimestampLevelEventAndFieldsInOrder) {
  CapturedLog log;
  const absl::Time before = absl::Now();
  LogEvent("grpc_listening", {{"address", "127.0.0.1:50051"}, {"queues", "a,b"}});
  const absl::Time after = absl::Now();
  const std::vector<std::string> lines = log.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], MatchesRegex("ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                                     "\\.[0-9]{3}Z level=info event=grpc_listening "
                                     "address=127\\.0\\.0\\.1:50051 queues=a,b"));
  const std::string ts = lines[0].substr(3, lines[0].find(' ') - 3);
  absl::Time when;
  std::string error;
  ASSERT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", ts, absl::UTCTimeZone(), &when, &error))
      << error;
  // Milliseconds are truncated, never rounded up past the real time.
  EXPECT_GE(when, absl::FromUnixMillis(absl::ToUnixMillis(before)));
  EXPECT_LE(when, after);
}

TEST(LogTest, LevelNamesAndFilter) {
  CapturedLog log;
  LogEvent(LogLevel::kDebug, "hidden", {});
  LogEvent(LogLevel::kWarning, "warned", {});
  LogEvent(LogLevel::kError, "failed", {});
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  EXPECT_TRUE(LogEnabled(LogLevel::kInfo));

  SetMinLogLevel(LogLevel::kError);
  LogEvent(LogLevel::kWarning, "dropped", {});
  LogEvent(LogLevel::kError, "kept", {});
  EXPECT_FALSE(LogEnabled(LogLevel::kWarning));
  SetMinLogLevel(LogLevel::kDebug);
  LogEvent(LogLevel::kDebug, "shown", {});
  SetMinLogLevel(LogLevel::kInfo);

  std::vector<std::string> got;
  for (const std::string& line : log.lines()) got.push_back(line.substr(line.find(" level=") + 1));
  EXPECT_THAT(got, ::testing::ElementsAre("level=warning event=warned", "level=error event=failed",
                                          "level=error event=kept", "level=debug event=shown"));
}

TEST(LogTest, PlainValuesAreBare) {
  EXPECT_EQ(Formatted("127.0.0.1:8080"), "127.0.0.1:8080");
  EXPECT_EQ(Formatted("/filemesh.v1.FileLister/List"), "/filemesh.v1.FileLister/List");
  EXPECT_EQ(Formatted("amqp://guest:***@localhost:5672/%2F"),
            "amqp://guest:***@localhost:5672/%2F");
}

TEST(LogTest, ValuesThatWouldBreakTheLineAreQuotedAndEscaped) {
  EXPECT_EQ(Formatted(""), "\"\"");
  EXPECT_EQ(Formatted("two words"), "\"two words\"");
  EXPECT_EQ(Formatted("a=b"), "\"a=b\"");
  EXPECT_EQ(Formatted("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(Formatted("C:\\dir"), "\"C:\\\\dir\"");
  EXPECT_EQ(Formatted("x\ny\rz\tw"), "\"x\\ny\\rz\\tw\"");
  EXPECT_EQ(Formatted(std::string_view("nul\0bell\x07"
                                       "del\x7f",
                                       13)),
            "\"nul\\x00bell\\x07del\\x7f\"");
  // A forged second event stays inside one quoted value.
  const std::string forged = Formatted("ok\nts=2020-01-01T00:00:00.000Z level=error event=pwned");
  EXPECT_EQ(forged, "\"ok\\nts=2020-01-01T00:00:00.000Z level=error event=pwned\"");
}

TEST(LogTest, ValidUtf8IsKeptAndInvalidBytesAreHexEscaped) {
  EXPECT_EQ(Formatted("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(Formatted("\xe6\x97\xa5\xf0\x9f\x98\x80"), "\"\xe6\x97\xa5\xf0\x9f\x98\x80\"");
  EXPECT_EQ(Formatted("a\xff"
                      "b"),
            "\"a\\xffb\"");
  EXPECT_EQ(Formatted("\xc0\xaf"), "\"\\xc0\\xaf\"");           // overlong '/'
  EXPECT_EQ(Formatted("\xed\xa0\x80"), "\"\\xed\\xa0\\x80\"");  // a surrogate
  EXPECT_EQ(Formatted("\xe2\x82"), "\"\\xe2\\x82\"");           // cut short
  // Characters some viewers break lines at are escaped as code points.
  EXPECT_EQ(Formatted("\xc2\x85"), "\"\\u0085\"");
  EXPECT_EQ(Formatted("a\xe2\x80\xa8"
                      "b\xe2\x80\xa9"),
            "\"a\\u2028b\\u2029\"");
}

TEST(LogTest, EveryByteValueStaysOnOneLine) {
  for (int a = 0; a < 256; ++a) {
    for (int b : {0, 0x0a, 0x22, 0x5c, 0x80, 0xa8, 0xbf, 0xc2, 0xe2, 0xff}) {
      const char bytes[2] = {static_cast<char>(a), static_cast<char>(b)};
      const std::string out = Formatted(std::string_view(bytes, 2));
      for (char c : out) {
        const auto u = static_cast<unsigned char>(c);
        ASSERT_TRUE(u >= 0x20 && u != 0x7f) << "byte " << a << "," << b << " gave " << out;
      }
      ASSERT_EQ(out.front(), '"');
      ASSERT_EQ(out.back(), '"');
    }
  }
}

TEST(LogTest, KeysCannotBreakTheLine) {
  CapturedLog log;
  LogEvent("e", {{"bad key=x", "v"}, {"", "w"}});
  ASSERT_EQ(log.lines().size(), 1u);
  EXPECT_EQ(AfterLevel(log.lines()[0]), "event=e bad_key_x=v _=w");
}

TEST(LogTest, EventNamesAreQuotedLikeValues) {
  CapturedLog log;
  LogEvent("two words", {});
  ASSERT_EQ(log.lines().size(), 1u);
  EXPECT_EQ(AfterLevel(log.lines()[0]), "event=\"two words\"");
}

// Points stderr at a file while it lives.
class StderrToFile {
 public:
  StderrToFile() : path_(absl::StrCat(::testing::TempDir(), "/log_test_stderr_", getpid())) {
    const int fd = ::open(path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    saved_ = ::dup(STDERR_FILENO);
    EXPECT_GE(fd, 0);
    EXPECT_GE(saved_, 0);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrToFile() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    std::remove(path_.c_str());
  }
  StderrToFile(const StderrToFile&) = delete;
  StderrToFile& operator=(const StderrToFile&) = delete;

  std::string Contents() const {
    std::string out;
    FILE* f = std::fopen(path_.c_str(), "rb");
    if (f == nullptr) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
  }

 private:
  std::string path_;
  int saved_ = -1;
};

TEST(LogTest, WithoutASinkLinesGoToStderrWholeFromManyThreads) {
  constexpr int kThreads = 8;
  constexpr int kLines = 200;
  std::string contents;
  {
    StderrToFile redirect;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([t] {
        const std::string padding(300, static_cast<char>('a' + t));
        for (int i = 0; i < kLines; ++i) {
          LogEvent("tick", {{"thread", absl::StrCat(t)}, {"i", absl::StrCat(i)}, {"pad", padding}});
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    contents = redirect.Contents();
  }
  ASSERT_TRUE(absl::EndsWith(contents, "\n"));
  std::vector<std::string> lines = absl::StrSplit(contents, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  for (const std::string& line : lines) {
    ASSERT_THAT(line, MatchesRegex("ts=\\S+ level=info event=tick thread=([0-7]) i=[0-9]+ "
                                   "pad=([a-h]{300})"));
  }
}

TEST(LogTest, RedactUrlHidesPasswordsOnly) {
  EXPECT_EQ(RedactUrl("amqp://guest:guest@127.0.0.1:5672/"), "amqp://guest:***@127.0.0.1:5672/");
  EXPECT_EQ(RedactUrl("amqp://user:s3cret@broker:5672/vhost"), "amqp://user:***@broker:5672/vhost");
  EXPECT_EQ(RedactUrl("http://a:b@[::1]:80/x?q=1"), "http://a:***@[::1]:80/x?q=1");
  EXPECT_EQ(RedactUrl("user:pass@host"), "user:***@host");
  // Unencoded '@' or '/' in the password leave nothing of it behind.
  EXPECT_EQ(RedactUrl("amqp://u:p@ss@host/"), "amqp://u:***@host/");
  EXPECT_EQ(RedactUrl("amqp://u:pa/ss@host/v"), "amqp://u:***@host/v");
  // Nothing to hide.
  EXPECT_EQ(RedactUrl("amqp://user@host:5672/"), "amqp://user@host:5672/");
  EXPECT_EQ(RedactUrl("amqp://user:@host/"), "amqp://user:@host/");
  EXPECT_EQ(RedactUrl("amqp://host:5672/"), "amqp://host:5672/");
  EXPECT_EQ(RedactUrl("http://host/?email=a@b"), "http://host/?email=a@b");
  EXPECT_EQ(RedactUrl(""), "");
  // A broker cluster's list: each URL's password, whatever the spaces.
  EXPECT_EQ(RedactUrl("amqp://u:a@h1:5672/,amqp://u:b@h2:5672/, amqps://u:c@h3/v"),
            "amqp://u:***@h1:5672/,amqp://u:***@h2:5672/, amqps://u:***@h3/v");
  // A comma in a password is no separator (nothing of it is left).
  EXPECT_EQ(RedactUrl("amqp://u:p,w@h1/,amqp://u:p,w@h2/"), "amqp://u:***@h1/,amqp://u:***@h2/");
  // libpq takes passwords in the query too, and keeps the other parameters.
  EXPECT_EQ(RedactUrl("postgresql://u:a@db/ops?sslmode=verify-full&password=b&sslpassword=c#f"),
            "postgresql://u:***@db/ops?sslmode=verify-full&password=***&sslpassword=***#f");
  EXPECT_EQ(RedactUrl("postgresql://db/ops?PassWord=x&&options=-c%20a%3Db&password"),
            "postgresql://db/ops?PassWord=***&&options=-c%20a%3Db&password");
  EXPECT_EQ(RedactUrl("postgresql://db/ops?"), "postgresql://db/ops?");
}

TEST(LogTest, ServiceHostLogsListeningAddressStartAndStop) {
  testing::SampleService service;
  CapturedLog log;
  auto host = testing::StartHost(service, testing::LoopbackListenAddress());
  const std::string address = absl::StrCat("127.0.0.1:", host->grpc_port());
  EXPECT_THAT(log.Events("grpc_listening"),
              ::testing::ElementsAre(::testing::EndsWith(" address=" + address + " tls=off")));
  ASSERT_EQ(log.Events("service_host_started").size(), 1u);
  EXPECT_THAT(log.Events("service_host_started")[0], HasSubstr(" grpc=" + address + " "));
  host->Shutdown(absl::Seconds(1));
  EXPECT_EQ(log.Events("service_host_stopping").size(), 1u);
  EXPECT_EQ(log.Events("service_host_stopped").size(), 1u);
}

TEST(LogTest, ServiceHostRedactsTheBrokerPassword) {
  testing::SampleService service;
  CapturedLog log;
  ServiceHostOptions options;
  // Nothing listens there: the broker is retried in the background.
  options.amqp.url =
      absl::StrCat("amqp://svc:hunter2@127.0.0.1:", testing::UnusedLoopbackPort(), "/");
  options.amqp.queue_prefix = "t.";
  options.reconnect_backoff_min = absl::Milliseconds(10);
  options.reconnect_backoff_max = absl::Milliseconds(20);
  ServiceHost host(options);
  host.AddFileLister(*service.lister);
  ASSERT_TRUE(host.Start().ok());
  host.Shutdown(absl::ZeroDuration());
  const std::vector<std::string> started = log.Events("service_host_started");
  ASSERT_EQ(started.size(), 1u);
  EXPECT_THAT(started[0], HasSubstr(" amqp_url=amqp://svc:***@127.0.0.1:"));
  EXPECT_THAT(started[0], HasSubstr(" queues=t.filemesh.v1.FileLister "));
  for (const std::string& line : log.lines()) EXPECT_THAT(line, Not(HasSubstr("hunter2")));
}

// Lists "docs" through a channel to `host`.
absl::Status ListDocs(const ServiceHost& host) {
  FailoverChannelOptions options;
  options.grpc_target = absl::StrCat("127.0.0.1:", host.grpc_port());
  // A first connection can be slow under sanitizers and there is no
  // fallback. (gRPC takes the minimum reconnect backoff as its connect
  // timeout too.)
  options.policy.attempt_timeout = absl::Seconds(30);
  options.reconnect_backoff_min = absl::Seconds(10);
  options.reconnect_backoff_max = absl::Seconds(20);
  auto channel = FailoverChannel::Create(options);
  if (!channel.ok()) return channel.status();
  FileListerClient client(*channel);
  v1::ListRequest request;
  request.set_path("docs");
  return client.List(request, absl::Now() + absl::Seconds(30), nullptr).status();
}

TEST(LogTest, LogCallsWritesOneLinePerCallBeforeTheReply) {
  testing::SampleService service;
  CapturedLog log;
  ServiceHostOptions options;
  options.grpc_listen = testing::LoopbackListenAddress();
  options.log_calls = true;
  ServiceHost host(options);
  host.AddFileLister(*service.lister);
  ASSERT_TRUE(host.Start().ok());
  for (int i = 0; i < 3; ++i) {
    const absl::Status listed = ListDocs(host);
    ASSERT_TRUE(listed.ok()) << listed;
    // Written before the reply left: already there.
    EXPECT_EQ(log.Events("call").size(), static_cast<size_t>(i + 1));
  }
  for (const std::string& line : log.Events("call")) {
    EXPECT_THAT(line, ContainsRegex(" event=call method=/filemesh\\.v1\\.FileLister/List "
                                    "transport=grpc code=OK duration_ms=[0-9.e-]+ peer=-$"));
  }
}

TEST(LogTest, CallsAreNotLoggedByDefault) {
  testing::SampleService service;
  CapturedLog log;
  auto host = testing::StartHost(service, testing::LoopbackListenAddress());
  ASSERT_TRUE(ListDocs(*host).ok());
  EXPECT_TRUE(log.Events("call").empty());
}

TEST(LogTest, BreakerStateChangesAreLoggedWithTheTarget) {
  CapturedLog log;
  FailoverChannelOptions options;
  options.grpc_target = absl::StrCat("127.0.0.1:", testing::UnusedLoopbackPort());
  options.policy.breaker_failure_threshold = 1;
  options.policy.breaker_cooldown = absl::Hours(1);
  auto channel = FailoverChannel::Create(options);
  ASSERT_TRUE(channel.ok()) << channel.status();
  FileListerClient client(*channel);
  EXPECT_FALSE(client.List(v1::ListRequest(), absl::Now() + absl::Seconds(5), nullptr).ok());
  EXPECT_THAT(log.Events("breaker_state_changed"),
              ::testing::ElementsAre(::testing::EndsWith(absl::StrCat(
                  "level=warning event=breaker_state_changed target=", options.grpc_target,
                  " from=closed to=open"))));
}

TEST(LogTimestampTest, MatchesAbslFormattingAcrossSecondsAndMilliseconds) {
  // Times around second, day, year and epoch boundaries, before and after
  // 1970, visited out of order so the per-thread cache is exercised.
  std::vector<absl::Time> times;
  for (int64_t base : {int64_t{0}, int64_t{1798761599}, int64_t{1798761600}, int64_t{-1},
                       int64_t{-86400}, int64_t{951782400}, int64_t{1798761599}}) {
    for (int64_t ms : {0, 1, 9, 10, 99, 100, 999}) {
      times.push_back(absl::FromUnixSeconds(base) + absl::Milliseconds(ms));
      times.push_back(absl::FromUnixSeconds(base) + absl::Milliseconds(ms) +
                      absl::Microseconds(999));
    }
  }
  times.push_back(absl::Now());
  for (const absl::Time t : times) {
    std::string got;
    internal::AppendLogTimestamp(t, &got);
    EXPECT_EQ(got, absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()))
        << absl::FormatTime(t);
  }
}

}  // namespace
}  // namespace filemesh
