// HttpServer on 127.0.0.1 with a real client: what a handler receives, what
// the client gets back, keep-alive, errors the server answers itself, every
// limit (sizes, counts, times, connections), asynchronous handlers, and a
// shutdown that lets requests in flight finish and closes stalled ones.

#include "filemesh/rest/http_server.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "filemesh/service/log.hpp"
#include "filemesh/service/process.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loopback_port.h"
#include "wait_for.h"

namespace filemesh {
namespace {

using ::filemesh::testing::ConnectLoopback;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using Query = std::vector<std::pair<std::string, std::string>>;

// A handler that keeps every request it gets and answers `response`.
class RecordingHandler {
 public:
  HttpHandler handler() {
    return [this](const HttpRequest& request) {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
      return response_;
    };
  }
  void set_response(HttpResponse response) {
    std::lock_guard<std::mutex> lock(mu_);
    response_ = std::move(response);
  }
  std::vector<HttpRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  mutable std::mutex mu_;
  HttpResponse response_{200, "text/plain", "ok", {}};
  std::vector<HttpRequest> requests_;
};

// Every request in `got` came over one connection (one client address and
// port).
void ExpectOneConnection(const std::vector<HttpRequest>& got) {
  for (const HttpRequest& r : got) EXPECT_EQ(r.remote_address, got[0].remote_address);
}

HttpServerOptions TestOptions() {
  HttpServerOptions options;
  options.listen = testing::LoopbackListenAddress();
  options.io_threads = 4;
  return options;
}

std::unique_ptr<HttpServer> StartServer(HttpHandler handler,
                                        HttpServerOptions options = TestOptions()) {
  auto server = std::make_unique<HttpServer>(options);
  const absl::Status status = server->Start(std::move(handler));
  EXPECT_TRUE(status.ok()) << status;
  return server;
}

std::unique_ptr<httplib::Client> ClientOf(const HttpServer& server) {
  auto client = std::make_unique<httplib::Client>("127.0.0.1", server.port());
  client->set_url_encode(false);  // send targets exactly as written
  client->set_keep_alive(true);
  return client;
}

// Sends `bytes` on a fresh connection, half-closes it, and returns all that
// comes back.
std::string RawExchange(int port, const std::string& bytes) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) {
    ADD_FAILURE() << "cannot connect to port " << port;
    return "";
  }
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// Whether a TCP connection to the port is refused (nothing listens).
bool ConnectionRefused(int port) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return true;
  ::close(fd);
  return false;
}

// A raw client connection for the tests that speak bytes: what it sends is
// exactly what goes on the wire. Every receive is bounded (10 s) so that a
// failure ends the test instead of hanging it; no wait here synchronises.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(ConnectLoopback(port)) {
    const timeval limit{10, 0};
    if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // False when the peer has closed or reset the connection.
  bool Send(std::string_view bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Everything until the server closes the connection (or 10 s pass).
  std::string ReadToClose() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
    closed_ = n == 0 || (n < 0 && errno == ECONNRESET);
    return out;
  }
  // Whether the last ReadToClose ended with the server closing.
  bool closed() const { return closed_; }

  // One response: its head, then Content-Length bytes of body.
  std::string ReadResponse() {
    std::string out;
    char c;
    while (!absl::EndsWith(out, "\r\n\r\n") && ::recv(fd_, &c, 1, 0) == 1) out.push_back(c);
    size_t length = 0;
    for (absl::string_view line : absl::StrSplit(out, "\r\n")) {
      if (absl::StartsWithIgnoreCase(line, "content-length:")) {
        (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(15)), &length);
      }
    }
    std::string body(length, '\0');
    size_t got = 0;
    while (got < length) {
      const ssize_t n = ::recv(fd_, body.data() + got, length - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    return out + body.substr(0, got);
  }

 private:
  int fd_;
  bool closed_ = false;
};

// The status code of a response that starts `bytes`, or 0.
int StatusOf(const std::string& bytes) {
  int status = 0;
  if (!absl::StartsWith(bytes, "HTTP/1.1 ") || bytes.size() < 12 ||
      !absl::SimpleAtoi(bytes.substr(9, 3), &status)) {
    return 0;
  }
  return status;
}

TEST(HttpServerTest, HandlerGetsDecodedRequestAndClientGetsItsResponse) {
  RecordingHandler recorder;
  recorder.set_response(
      {201, "application/json", "{\"a\":1}", {{"X-Request-Id", "r-1"}, {"Location", "/x/1"}}});
  auto server = StartServer(recorder.handler());
  auto client = ClientOf(*server);
  auto result = client->Get("/api/v1/files?path=a%20b&x=1&x=2&plus=a+b&empty=&flag&&pct=%25",
                            {{"X-Request-Id", "abc"}, {"Authorization", "Bearer k"}});
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 201);
  EXPECT_EQ(result->body, "{\"a\":1}");
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(result->get_header_value("X-Request-Id"), "r-1");
  EXPECT_EQ(result->get_header_value("Location"), "/x/1");

  const std::vector<HttpRequest> got = recorder.requests();
  ASSERT_EQ(got.size(), 1u);
  const HttpRequest& r = got[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/api/v1/files");
  EXPECT_EQ(r.query, (Query{{"path", "a b"},
                            {"x", "1"},
                            {"x", "2"},
                            {"plus", "a b"},
                            {"empty", ""},
                            {"flag", ""},
                            {"pct", "%"}}));
  ASSERT_NE(r.Header("x-request-id"), nullptr);
  EXPECT_EQ(*r.Header("x-request-id"), "abc");
  ASSERT_NE(r.Header("authorization"), nullptr);
  EXPECT_EQ(*r.Header("authorization"), "Bearer k");
  for (const auto& [name, value] : r.headers) {
    EXPECT_EQ(name, absl::AsciiStrToLower(name));
    EXPECT_NE(name, "remote_addr");  // httplib's own bookkeeping is not a header
  }
  EXPECT_THAT(r.remote_address, MatchesRegex("127\\.0\\.0\\.1:[0-9]+"));
}

TEST(HttpServerTest, PathIsPercentDecodedButPlusStays) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  ASSERT_TRUE(ClientOf(*server)->Get("/files/a%2Fb%20c+d%00e"));
  ASSERT_EQ(recorder.requests().size(), 1u);
  EXPECT_EQ(recorder.requests()[0].path, std::string("/files/a/b c+d\0e", 16));
  EXPECT_TRUE(recorder.requests()[0].query.empty());
}

TEST(HttpServerTest, MalformedEscapesAre400WithoutCallingTheHandler) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  auto client = ClientOf(*server);
  for (const char* target : {"/x?q=%zz", "/x?q=%4", "/x%", "/x?%g1=v"}) {
    auto result = client->Get(target);
    ASSERT_TRUE(result) << target;
    EXPECT_EQ(result->status, 400) << target;
    EXPECT_EQ(result->get_header_value("Content-Type"), "application/problem+json") << target;
    EXPECT_THAT(result->body, HasSubstr("percent escape")) << target;
  }
  EXPECT_TRUE(recorder.requests().empty());
}

TEST(HttpServerTest, AThrowingHandlerIsAnswered500) {
  auto server =
      StartServer([](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
  auto client = ClientOf(*server);
  auto result = client->Get("/anything");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 500);
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/problem+json");
  EXPECT_THAT(result->body, Not(HasSubstr("boom")));  // internals stay inside
  // The connection and the server survive it.
  auto again = client->Get("/anything");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 500);
}

TEST(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  auto client = ClientOf(*server);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client->Get(absl::StrCat("/n?i=", i)));
  const std::vector<HttpRequest> got = recorder.requests();
  ASSERT_EQ(got.size(), 20u);
  ExpectOneConnection(got);
}

TEST(HttpServerTest, MethodsAndBodiesReachTheHandler) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  auto client = ClientOf(*server);
  auto posted = client->Post("/things", std::string(1000, 'x'), "text/plain");
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->status, 200);
  ASSERT_TRUE(client->Delete("/things/1"));
  ASSERT_TRUE(client->Options("/things"));
  // The body was read off the connection: the next request parses.
  ASSERT_TRUE(client->Get("/after"));
  const std::vector<HttpRequest> got = recorder.requests();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].path, "/things");
  EXPECT_EQ(got[1].method, "DELETE");
  EXPECT_EQ(got[2].method, "OPTIONS");
  EXPECT_EQ(got[3].path, "/after");
  ExpectOneConnection(got);
}

TEST(HttpServerTest, BodyOverTheLimitIs413) {
  RecordingHandler recorder;
  HttpServerOptions options = TestOptions();
  options.max_body_bytes = 100;
  auto server = StartServer(recorder.handler(), options);
  auto result = ClientOf(*server)->Post("/things", std::string(101, 'x'), "text/plain");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 413);
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/problem+json");
  EXPECT_TRUE(recorder.requests().empty());
}

TEST(HttpServerTest, RequestsTheServerCannotParseGetProblems) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  const std::string garbage = RawExchange(server->port(), "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_THAT(garbage, ::testing::StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(garbage, HasSubstr("application/problem+json"));
  const std::string long_target =
      RawExchange(server->port(),
                  absl::StrCat("GET /", std::string(10000, 'a'), " HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_THAT(long_target, ::testing::StartsWith("HTTP/1.1 414 "));
  EXPECT_THAT(long_target, HasSubstr("application/problem+json"));
  EXPECT_TRUE(recorder.requests().empty());
}

TEST(HttpServerTest, ARangeHeaderDoesNotCutTheResponse) {
  RecordingHandler recorder;
  recorder.set_response({200, "application/json", "{\"entries\":[1,2,3]}", {}});
  auto server = StartServer(recorder.handler());
  auto result = ClientOf(*server)->Get("/x", {{"Range", "bytes=0-3"}});
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "{\"entries\":[1,2,3]}");
}

// Responses are buffered per connection and sent when complete or when the
// buffer fills: bodies many times the buffer arrive whole, with or without
// a Range header, and the connection serves the next request.
TEST(HttpServerTest, LargeResponsesArriveWholeAndTheConnectionGoesOn) {
  std::string body;
  for (int i = 0; body.size() < 1'000'000; ++i) absl::StrAppend(&body, i, ",");
  RecordingHandler recorder;
  recorder.set_response({200, "text/plain", body, {}});
  auto server = StartServer(recorder.handler());
  auto client = ClientOf(*server);
  auto plain = client->Get("/big");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);
  EXPECT_TRUE(plain->body == body) << "got " << plain->body.size() << " bytes";
  auto ranged = client->Get("/big", {{"Range", "bytes=0-3"}});
  ASSERT_TRUE(ranged);
  EXPECT_EQ(ranged->status, 200);
  EXPECT_TRUE(ranged->body == body) << "got " << ranged->body.size() << " bytes";
  recorder.set_response({200, "text/plain", "small", {}});
  auto after = client->Get("/small");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->body, "small");
  const std::vector<HttpRequest> got = recorder.requests();
  ASSERT_EQ(got.size(), 3u);
  ExpectOneConnection(got);
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  const std::string out =
      RawExchange(server->port(),
                  "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::vector<std::string> answers =
      absl::StrSplit(out, "HTTP/1.1 200 OK\r\n", absl::SkipEmpty());
  EXPECT_EQ(answers.size(), 3u) << out;
  const std::vector<HttpRequest> got = recorder.requests();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].path, "/one");
  EXPECT_EQ(got[1].path, "/two");
  EXPECT_EQ(got[2].path, "/three");
}

// A client that sends "Expect: 100-continue" waits for the interim response
// before it sends the body: the server must not keep it in its buffer.
TEST(HttpServerTest, ContinueIsSentBeforeTheBodyIsRead) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  const int fd = ConnectLoopback(server->port());
  ASSERT_GE(fd, 0);
  // A bound on a failure, not a synchronisation: the answer comes at once.
  const timeval limit{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  const std::string head =
      "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
      "Content-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  std::string interim;
  char c;
  while (!absl::EndsWith(interim, "\r\n\r\n") && ::recv(fd, &c, 1, 0) == 1) interim.push_back(c);
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_EQ(::send(fd, "hello", 5, MSG_NOSIGNAL), 5);
  std::string rest;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) rest.append(buf, static_cast<size_t>(n));
  ::close(fd);
  EXPECT_THAT(rest, ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
  const std::vector<HttpRequest> got = recorder.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].path, "/upload");
}

TEST(HttpServerTest, ErrorResponsesWithoutBodyGetAProblem) {
  RecordingHandler recorder;
  recorder.set_response({404, "", "", {}});
  auto server = StartServer(recorder.handler());
  auto result = ClientOf(*server)->Get("/missing");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  EXPECT_EQ(result->get_header_value("Content-Type"), "application/problem+json");
}

TEST(HttpServerTest, PortZeroPicksAPortAndLogsTheAddress) {
  std::vector<std::string> lines;
  std::mutex mu;
  SetLogSink([&](std::string_view line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.emplace_back(line);
  });
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  SetLogSink(nullptr);
  ASSERT_GT(server->port(), 0);
  EXPECT_EQ(server->address(), absl::StrCat("127.0.0.1:", server->port()));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr(absl::StrCat(
                            " event=http_listening address=127.0.0.1:", server->port(), " ")));
}

TEST(HttpServerTest, MalformedListenAddressesAreInvalidArgument) {
  for (const char* listen :
       {"", "8080", "127.0.0.1", "127.0.0.1:", ":8080", "127.0.0.1:99999", "127.0.0.1:-1",
        "127.0.0.1:80a", "::1:8080", "[::1:8080", "[]:80", "no-such-host.invalid:8080"}) {
    HttpServerOptions options;
    options.listen = listen;
    HttpServer server(options);
    const absl::Status status = server.Start([](const HttpRequest&) { return HttpResponse{}; });
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << listen << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(listen)) << status;
  }
}

TEST(HttpServerTest, BadOptionsAreInvalidArgument) {
  HttpServerOptions options;
  options.listen = testing::LoopbackListenAddress();
  options.io_threads = -1;
  EXPECT_EQ(HttpServer(options).Start([](const HttpRequest&) { return HttpResponse{}; }).code(),
            absl::StatusCode::kInvalidArgument);
  options.io_threads = 1;
  EXPECT_EQ(HttpServer(options).Start(HttpHandler()).code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpServerTest, PortInUseIsUnavailable) {
  RecordingHandler recorder;
  auto first = StartServer(recorder.handler());
  HttpServerOptions options;
  options.listen = absl::StrCat("127.0.0.1:", first->port());
  HttpServer second(options);
  const absl::Status status = second.Start(recorder.handler());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("in use"));
  // The first one still serves.
  EXPECT_TRUE(ClientOf(*first)->Get("/still-here"));
}

TEST(HttpServerTest, StartTwiceIsFailedPrecondition) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  EXPECT_EQ(server->Start(recorder.handler()).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(HttpServerTest, ShutdownAndWaitBeforeStartReturn) {
  HttpServer server(HttpServerOptions{});
  server.Shutdown();
  server.Wait();
  EXPECT_EQ(server.port(), 0);
}

TEST(HttpServerTest, ShutdownLetsARequestInFlightFinish) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  auto server = StartServer([&](const HttpRequest&) {
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return HttpResponse{200, "text/plain", "finished", {}};
  });
  const int port = server->port();
  std::unique_ptr<httplib::Result> in_flight;
  std::thread caller(
      [&] { in_flight = std::make_unique<httplib::Result>(ClientOf(*server)->Get("/slow")); });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  std::thread stopper([&] { server->Shutdown(); });
  // Shutdown has begun once nothing listens any more.
  while (!ConnectionRefused(port)) std::this_thread::yield();
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  caller.join();
  stopper.join();
  server->Wait();
  ASSERT_TRUE(*in_flight) << httplib::to_string(in_flight->error());
  EXPECT_EQ((*in_flight)->status, 200);
  EXPECT_EQ((*in_flight)->body, "finished");
}

TEST(HttpServerTest, IdleKeepAliveConnectionsDoNotHoldUpShutdown) {
  RecordingHandler recorder;
  HttpServerOptions options = TestOptions();
  options.idle_timeout = absl::Hours(1);  // waiting it out would hang the test
  auto server = StartServer(recorder.handler(), options);
  auto client = ClientOf(*server);
  ASSERT_TRUE(client->Get("/one"));
  ASSERT_TRUE(client->is_socket_open());
  server->Shutdown();
  server->Shutdown();  // idempotent
  server->Wait();
  EXPECT_TRUE(ConnectionRefused(server->port()));
}

TEST(HttpServerTest, ManyClientsAtOnce) {
  std::atomic<int> served{0};
  auto server = StartServer([&](const HttpRequest& r) {
    ++served;
    return HttpResponse{200, "text/plain", r.path, {}};
  });
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      auto client = ClientOf(*server);
      for (int i = 0; i < 50; ++i) {
        const std::string path = absl::StrCat("/c", t, "/", i);
        auto result = client->Get(path);
        if (result && result->status == 200 && result->body == path) ++ok;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(ok.load(), 400);
  EXPECT_EQ(served.load(), 400);
}

// ---- Limits: each a clear status and a closed connection. ----

TEST(HttpServerTest, AHeadOverTheLimitIs431AndClosesTheConnection) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  RawConnection c(server->port());
  ASSERT_TRUE(c.ok());
  c.Send(absl::StrCat("GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", std::string(17 * 1024, 'a'),
                      "\r\n\r\n"));
  const std::string out = c.ReadToClose();
  EXPECT_EQ(StatusOf(out), 431) << out.substr(0, 200);
  EXPECT_THAT(out, HasSubstr("application/problem+json"));
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(recorder.requests().empty());
}

// One header line that never ends: the server answers once it has 16 KiB
// and closes, so whatever the client goes on sending is never kept.
TEST(HttpServerTest, AnEndlessHeaderLineIsCutAtTheLimit) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  RawConnection c(server->port());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nX-Endless: "));
  const std::string chunk(64 * 1024, 'a');
  size_t sent = 0;
  // Bounded: 64 MiB at most; the server stops it long before.
  while (sent < (size_t{64} << 20) && c.Send(chunk)) sent += chunk.size();
  EXPECT_LT(sent, size_t{64} << 20) << "the server kept reading an endless header line";
  const std::string out = c.ReadToClose();
  // The reset may have eaten the response; when it came, it is a 431.
  if (!out.empty()) {
    EXPECT_EQ(StatusOf(out), 431) << out.substr(0, 200);
  }
  EXPECT_TRUE(recorder.requests().empty());
}

TEST(HttpServerTest, TooManyHeaderFieldsIs431) {
  RecordingHandler recorder;
  HttpServerOptions options = TestOptions();
  options.max_header_fields = 10;
  auto server = StartServer(recorder.handler(), options);
  std::string ten = "GET /ten HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 9; ++i) absl::StrAppend(&ten, "X-F", i, ": v\r\n");
  EXPECT_EQ(StatusOf(RawExchange(server->port(), ten + "\r\n")), 200);
  std::string eleven = "GET /eleven HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 10; ++i) absl::StrAppend(&eleven, "X-F", i, ": v\r\n");
  RawConnection c(server->port());
  ASSERT_TRUE(c.ok());
  c.Send(eleven + "\r\n");
  const std::string out = c.ReadToClose();
  EXPECT_EQ(StatusOf(out), 431) << out;
  EXPECT_THAT(out, HasSubstr("more than 10 header fields"));
  EXPECT_TRUE(c.closed());
  ASSERT_EQ(recorder.requests().size(), 1u);
  EXPECT_EQ(recorder.requests()[0].path, "/ten");
}

TEST(HttpServerTest, ATargetOverTheLimitIs414EvenPastTheHeadLimit) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  const std::string just_fits = absl::StrCat("/", std::string(8 * 1024 - 1, 'a'));
  EXPECT_EQ(StatusOf(RawExchange(server->port(),
                                 absl::StrCat("GET ", just_fits, " HTTP/1.1\r\nHost: x\r\n\r\n"))),
            200);
  for (const size_t length : {8 * 1024 + 1, 20 * 1024}) {
    RawConnection c(server->port());
    ASSERT_TRUE(c.ok());
    c.Send(absl::StrCat("GET /", std::string(length, 'a'), " HTTP/1.1\r\nHost: x\r\n\r\n"));
    const std::string out = c.ReadToClose();
    EXPECT_EQ(StatusOf(out), 414) << length;
    EXPECT_TRUE(c.closed());
  }
  EXPECT_EQ(recorder.requests().size(), 1u);
}

// Slow-loris: a head that trickles in is cut at head_timeout from its first
// byte, however steadily it trickles.
TEST(HttpServerTest, AHeadNotCompleteInTimeIs408) {
  RecordingHandler recorder;
  HttpServerOptions options = TestOptions();
  options.head_timeout = absl::Milliseconds(300);
  auto server = StartServer(recorder.handler(), options);
  RawConnection c(server->port());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\n"));
  const absl::Time start = absl::Now();
  // One more header line every 50 ms: each is progress, none completes it.
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    for (int i = 0; i < 200 && !stop.load(); ++i) {
      if (!c.Send(absl::StrCat("X-", i, ": v\r\n"))) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the load, not a sync
    }
  });
  const std::string out = c.ReadToClose();
  stop.store(true);
  trickle.join();
  EXPECT_EQ(StatusOf(out), 408) << out;
  EXPECT_THAT(out, HasSubstr("did not arrive within"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(8)) << "cut by the failure bound, not the server";
  EXPECT_TRUE(recorder.requests().empty());
}

TEST(HttpServerTest, ABodyNotCompleteInTimeIs408) {
  RecordingHandler recorder;
  HttpServerOptions options = TestOptions();
  options.body_timeout = absl::Milliseconds(200);
  auto server = StartServer(recorder.handler(), options);
  RawConnection c(server->port());
  ASSERT_TRUE(c.ok());
  c.Send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  const std::string out = c.ReadToClose();
  EXPECT_EQ(StatusOf(out), 408) << out;
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(recorder.requests().empty());
}

TEST(HttpServerTest, AnIdleKeepAliveConnectionIsClosedAfterTheIdleTimeout) {
  RecordingHandler recorder;
  HttpServerOptions options = TestOptions();
  options.idle_timeout = absl::Milliseconds(200);
  auto server = StartServer(recorder.handler(), options);
  RawConnection c(server->port());
  ASSERT_TRUE(c.ok());
  c.Send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(StatusOf(c.ReadResponse()), 200);
  // Nothing more is sent: the server closes, without a response.
  EXPECT_EQ(c.ReadToClose(), "");
  EXPECT_TRUE(c.closed());
  EXPECT_TRUE(testing::WaitFor([&] { return server->connections() == 0; }, absl::Seconds(5)));
}

// Request smuggling: a GET whose Content-Length covers a second request is
// one request with a body (read and dropped), so one response.
TEST(HttpServerTest, AGetWithABodyIsOneRequestAndOneResponse) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  const std::string inner = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string out =
      RawExchange(server->port(),
                  absl::StrCat("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: ", inner.size(),
                               "\r\n\r\n", inner));
  const std::vector<std::string> answers = absl::StrSplit(out, "HTTP/1.1 ", absl::SkipEmpty());
  EXPECT_EQ(answers.size(), 1u) << out;
  const std::vector<HttpRequest> got = recorder.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/healthz");
}

TEST(HttpServerTest, AmbiguousBodyLengthsAre400AndClose) {
  RecordingHandler recorder;
  auto server = StartServer(recorder.handler());
  const std::string heads[] = {
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
  };
  for (const std::string& head : heads) {
    RawConnection c(server->port());
    ASSERT_TRUE(c.ok());
    c.Send(head + "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string out = c.ReadToClose();
    EXPECT_EQ(StatusOf(out), 400) << head << "\n" << out;
    EXPECT_EQ(std::vector<std::string>(absl::StrSplit(out, "HTTP/1.1 ", absl::SkipEmpty())).size(),
              1u)
        << "the connection went on after an ambiguous length: " << out;
    EXPECT_TRUE(c.closed());
  }
  EXPECT_TRUE(recorder.requests().empty());
}

// Past max_connections a new connection gets 503 and is closed at once;
// once one closes, the next is served.
TEST(HttpServerTest, ConnectionsPastTheLimitGet503AndAreClosed) {
  RecordingHandler recorder;
  HttpServerOptions options = TestOptions();
  options.max_connections = 2;
  auto server = StartServer(recorder.handler(), options);
  auto first = std::make_unique<RawConnection>(server->port());
  RawConnection second(server->port());
  ASSERT_TRUE(first->ok() && second.ok());
  ASSERT_TRUE(testing::WaitFor([&] { return server->connections() == 2; }, absl::Seconds(5)));
  RawConnection third(server->port());
  ASSERT_TRUE(third.ok());
  const std::string refused = third.ReadToClose();
  EXPECT_EQ(StatusOf(refused), 503) << refused;
  EXPECT_THAT(refused, HasSubstr("Retry-After: 1"));
  EXPECT_TRUE(third.closed());
  // The two open ones are still served.
  second.Send("GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(StatusOf(second.ReadResponse()), 200);
  first.reset();
  ASSERT_TRUE(testing::WaitFor([&] { return server->connections() == 1; }, absl::Seconds(5)));
  EXPECT_EQ(StatusOf(RawExchange(server->port(), "GET /fourth HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
}

// A peer that does not read its response is dropped after write_timeout.
TEST(HttpServerTest, APeerThatDoesNotReadIsDropped) {
  RecordingHandler recorder;
  recorder.set_response({200, "text/plain", std::string(32 << 20, 'x'), {}});
  HttpServerOptions options = TestOptions();
  options.write_timeout = absl::Milliseconds(300);
  auto server = StartServer(recorder.handler(), options);
  RawConnection c(server->port());
  ASSERT_TRUE(c.ok());
  const int small = 4096;
  ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  c.Send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(testing::WaitFor([&] { return recorder.requests().size() == 1; }, absl::Seconds(5)));
  // Never read: the server gives up on the write and closes.
  EXPECT_TRUE(testing::WaitFor([&] { return server->connections() == 0; }, absl::Seconds(10)));
}

TEST(HttpServerTest, HeadGetsTheHeadersWithoutTheBody) {
  RecordingHandler recorder;
  recorder.set_response({200, "application/json", "{\"a\":1}", {{"X-Extra", "yes"}}});
  auto server = StartServer(recorder.handler());
  RawConnection c(server->port());
  ASSERT_TRUE(c.ok());
  c.Send(
      "HEAD /x HTTP/1.1\r\nHost: x\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string out = c.ReadToClose();
  // The HEAD response says the GET's length and carries no body: the next
  // response follows its blank line directly.
  EXPECT_THAT(out, ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(out, HasSubstr("Content-Length: 7\r\n"));
  EXPECT_THAT(out, HasSubstr("X-Extra: yes\r\n"));
  EXPECT_THAT(out, HasSubstr("\r\n\r\nHTTP/1.1 200 OK\r\n"));
  EXPECT_TRUE(absl::EndsWith(out, "\r\n\r\n{\"a\":1}")) << out;
}

TEST(HttpServerTest, HeaderFieldsThatWouldSplitTheResponseAreDropped) {
  RecordingHandler recorder;
  recorder.set_response({200,
                         "text/plain",
                         "ok",
                         {{"X-Good", "fine"},
                          {"X-Bad", "a\r\nSet-Cookie: evil=1"},
                          {"Bad Name", "v"},
                          {"Content-Length", "999"}}});
  auto server = StartServer(recorder.handler());
  const std::string out =
      RawExchange(server->port(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(out, HasSubstr("X-Good: fine\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("evil")));
  EXPECT_THAT(out, Not(HasSubstr("Bad Name")));
  EXPECT_THAT(out, HasSubstr("Content-Length: 2\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("999")));
}

// ---- Asynchronous handlers. ----

TEST(HttpServerTest, AnAsyncHandlerAnswersFromAnotherThreadLater) {
  std::mutex mu;
  std::vector<std::pair<std::string, HttpResponder>> waiting;
  auto server = std::make_unique<HttpServer>(TestOptions());
  ASSERT_TRUE(server
                  ->Start([&](HttpRequest request, HttpResponder respond) {
                    std::lock_guard<std::mutex> lock(mu);
                    waiting.emplace_back(request.path, std::move(respond));
                  })
                  .ok());
  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<RawConnection>(server->port()));
    clients.back()->Send(absl::StrCat("GET /", i, " HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return waiting.size() == 3;
      },
      absl::Seconds(5)));
  // Answered in reverse order, from a thread of the test's own.
  std::thread answerer([&] {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = waiting.rbegin(); it != waiting.rend(); ++it) {
      it->second(HttpResponse{200, "text/plain", "for " + it->first, {}});
      it->second(HttpResponse{500, "text/plain", "a second answer is ignored", {}});
    }
  });
  answerer.join();
  for (int i = 0; i < 3; ++i) {
    const std::string out = clients[i]->ReadResponse();
    EXPECT_EQ(StatusOf(out), 200);
    EXPECT_TRUE(absl::EndsWith(out, absl::StrCat("for /", i))) << out;
  }
}

TEST(HttpServerTest, AResponderDroppedWithoutAnAnswerGives500) {
  auto server = std::make_unique<HttpServer>(TestOptions());
  ASSERT_TRUE(server->Start([](HttpRequest, HttpResponder) {}).ok());
  const std::string out =
      RawExchange(server->port(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(StatusOf(out), 500) << out;
  EXPECT_THAT(out, HasSubstr("gave no response"));
}

// 1,000 connections that each send half a request line and stall hold no
// thread: requests on other connections are answered meanwhile.
TEST(HttpServerTest, StalledConnectionsDoNotStopOthers) {
  ASSERT_GE(RaiseOpenFileLimit(4096), 2100) << "the test needs 2,000+ descriptors";
  RecordingHandler recorder;
  HttpServerOptions options = TestOptions();
  options.io_threads = 2;
  options.max_connections_per_client = 2000;  // all of them come from 127.0.0.1
  auto server = StartServer(recorder.handler(), options);
  std::vector<std::unique_ptr<RawConnection>> stalled;
  for (int i = 0; i < 1000; ++i) {
    stalled.push_back(std::make_unique<RawConnection>(server->port()));
    ASSERT_TRUE(stalled.back()->ok()) << i;
    ASSERT_TRUE(stalled.back()->Send("GET /stall"));
  }
  ASSERT_TRUE(testing::WaitFor([&] { return server->connections() == 1000; }, absl::Seconds(10)));
  auto client = ClientOf(*server);
  for (int i = 0; i < 20; ++i) {
    auto result = client->Get(absl::StrCat("/normal/", i));
    ASSERT_TRUE(result) << i;
    EXPECT_EQ(result->status, 200);
  }
  EXPECT_EQ(recorder.requests().size(), 20u);
}

// SIGTERM's path: with stalled clients and idle ones, Shutdown closes them
// at once instead of waiting for their timeouts (an hour here).
TEST(HttpServerTest, ShutdownClosesStalledAndIdleConnectionsAtOnce) {
  ASSERT_GE(RaiseOpenFileLimit(4096), 2100);
  RecordingHandler recorder;
  HttpServerOptions options = TestOptions();
  options.head_timeout = absl::Hours(1);
  options.idle_timeout = absl::Hours(1);
  options.shutdown_grace = absl::Hours(1);
  options.max_connections_per_client = 2000;  // all of them come from 127.0.0.1
  auto server = StartServer(recorder.handler(), options);
  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int i = 0; i < 1000; ++i) {
    clients.push_back(std::make_unique<RawConnection>(server->port()));
    ASSERT_TRUE(clients.back()->ok());
    clients.back()->Send(i % 2 == 0 ? "GET /half" : "");
  }
  ASSERT_TRUE(testing::WaitFor([&] { return server->connections() == 1000; }, absl::Seconds(10)));
  server->Shutdown();  // would hang for an hour if it waited for any of them
  EXPECT_EQ(server->connections(), 0u);
  for (auto& c : clients) {
    EXPECT_EQ(c->ReadToClose(), "");
    EXPECT_TRUE(c->closed());
  }
}

// One client address may hold max_connections_per_client connections; the
// next from it is answered 503 and closed, and one freed makes room again.
TEST(HttpServerLimitsTest, ConnectionsPastThePerClientCapGet503) {
  RecordingHandler handler;
  HttpServerOptions options = TestOptions();
  options.max_connections_per_client = 2;
  auto server = StartServer(handler.handler(), options);
  auto first = std::make_unique<RawConnection>(server->port());
  RawConnection second(server->port());
  ASSERT_TRUE(first->ok() && second.ok());
  ASSERT_TRUE(testing::WaitFor([&] { return server->connections() == 2; }, absl::Seconds(10)));
  RawConnection third(server->port());
  ASSERT_TRUE(third.ok());
  const std::string refused = third.ReadToClose();
  EXPECT_EQ(StatusOf(refused), 503) << refused;
  EXPECT_THAT(refused, HasSubstr("this client has as many connections"));
  EXPECT_THAT(refused, HasSubstr("Retry-After: 1"));
  EXPECT_TRUE(third.closed());
  first.reset();
  ASSERT_TRUE(testing::WaitFor([&] { return server->connections() == 1; }, absl::Seconds(10)));
  const auto result = ClientOf(*server)->Get("/again");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
}

// A new connection gets head_timeout, not idle_timeout, for its first byte.
TEST(HttpServerLimitsTest, ANewConnectionThatSendsNothingIsClosedAtTheHeadTimeout) {
  RecordingHandler handler;
  HttpServerOptions options = TestOptions();
  options.head_timeout = absl::Milliseconds(300);
  options.idle_timeout = absl::Seconds(60);
  auto server = StartServer(handler.handler(), options);
  RawConnection silent(server->port());
  ASSERT_TRUE(silent.ok());
  EXPECT_EQ(silent.ReadToClose(), "");
  EXPECT_TRUE(silent.closed());  // within the 10 s bound of every read here
  EXPECT_TRUE(handler.requests().empty());
}

// Responses waiting for slow readers are bounded in bytes across the server:
// a large answer that would pass the bound is 503; small ones still go; once
// the slow reader has taken its answer, large ones go again.
TEST(HttpServerLimitsTest, LargeResponsesPastTheBufferedBoundAre503) {
  const std::string big(8 * 1024 * 1024, 'b');
  HttpServerOptions options = TestOptions();
  options.max_buffered_response_bytes = 10 * 1024 * 1024;
  auto server = StartServer(
      [&](const HttpRequest& request) {
        return HttpResponse{200, "text/plain", request.path == "/big" ? big : "small", {}};
      },
      options);
  // A slow reader: a small receive buffer, a request for the big answer,
  // and nothing read.
  const int slow = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(slow, 0);
  const int small_buffer = 16 * 1024;
  ::setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small_buffer, sizeof(small_buffer));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(server->port()));
  ASSERT_EQ(::connect(slow, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(slow, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  ASSERT_TRUE(testing::WaitFor([&] { return server->buffered_response_bytes() >= big.size(); },
                               absl::Seconds(10)));

  auto client = ClientOf(*server);
  auto refused = client->Get("/big");
  ASSERT_TRUE(refused) << httplib::to_string(refused.error());
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_THAT(refused->body, HasSubstr("max_buffered_response_bytes"));
  auto small = client->Get("/small");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->status, 200);

  // The slow reader takes its answer: the bytes are free again.
  const timeval limit{10, 0};
  ::setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  size_t taken = 0;
  std::vector<char> chunk(1 << 16);
  while (taken < big.size()) {
    const ssize_t n = ::recv(slow, chunk.data(), chunk.size(), 0);
    if (n <= 0) break;
    taken += static_cast<size_t>(n);
  }
  ::close(slow);
  EXPECT_GE(taken, big.size());
  ASSERT_TRUE(
      testing::WaitFor([&] { return server->buffered_response_bytes() == 0; }, absl::Seconds(10)));
  auto served = client->Get("/big");
  ASSERT_TRUE(served) << httplib::to_string(served.error());
  EXPECT_EQ(served->status, 200);
  EXPECT_EQ(served->body.size(), big.size());
}

TEST(HttpServerLimitsTest, ZeroPerClientAndBufferedBoundsAreInvalidArgument) {
  for (int which = 0; which < 2; ++which) {
    HttpServerOptions options = TestOptions();
    if (which == 0) options.max_connections_per_client = 0;
    if (which == 1) options.max_buffered_response_bytes = 0;
    HttpServer server(options);
    EXPECT_EQ(server.Start([](const HttpRequest&) { return HttpResponse{}; }).code(),
              absl::StatusCode::kInvalidArgument)
        << which;
  }
}

}  // namespace
}  // namespace filemesh
