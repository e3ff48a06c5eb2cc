// HttpServer on 127.0.0.1 with a real client: what a handler receives, what
// the client gets back, keep-alive, errors the server answers itself, and a
// shutdown that lets requests in flight finish.

#include "filemesh/http_server.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
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
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "filemesh/log.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace filemesh {
namespace {

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
  options.listen = "127.0.0.1:0";
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

// A TCP connection to 127.0.0.1:port, or -1.
int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
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
  options.listen = "127.0.0.1:0";
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

}  // namespace
}  // namespace filemesh
