// HttpServer over TLS: a real server on loopback, cpp-httplib's SSL client
// and a bare OpenSSL client, with certificates made by tests/tls/make_certs.sh.

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "captured_log.h"
#include "filemesh/rest/http_server.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loopback_port.h"
#include "tls_test_support.h"
#include "wait_for.h"

namespace filemesh {
namespace {

using ::testing::HasSubstr;
using testing::TestCertificates;

const auto* const kOpenSsl =
    ::testing::AddGlobalTestEnvironment(new testing::OpenSslWithoutAtExitEnvironment);

HttpServerOptions HttpsOptions(const std::string& cert = "server", const std::string& ca = "") {
  HttpServerOptions options;
  options.listen = testing::LoopbackListenAddress();
  options.io_threads = 2;
  options.tls = TestCertificates::Server(cert, ca);
  return options;
}

HttpHandler Echo() {
  return [](const HttpRequest& request) {
    return HttpResponse{200, "text/plain", absl::StrCat("path=", request.path), {}};
  };
}

std::unique_ptr<HttpServer> StartServer(const HttpServerOptions& options,
                                        HttpHandler handler = Echo()) {
  auto server = std::make_unique<HttpServer>(options);
  const absl::Status status = server->Start(std::move(handler));
  EXPECT_TRUE(status.ok()) << status;
  return server;
}

// httplib's SSL client toward the server, verifying it against `ca`.
std::unique_ptr<httplib::SSLClient> ClientOf(const HttpServer& server, const std::string& ca = "ca",
                                             const std::string& cert = "") {
  auto client = cert.empty() ? std::make_unique<httplib::SSLClient>("127.0.0.1", server.port())
                             : std::make_unique<httplib::SSLClient>("127.0.0.1", server.port(),
                                                                    TestCertificates::Pem(cert),
                                                                    TestCertificates::Key(cert));
  client->set_ca_cert_path(TestCertificates::Pem(ca).c_str());
  client->enable_server_certificate_verification(true);
  client->set_keep_alive(true);
  client->set_connection_timeout(10);
  client->set_read_timeout(10);
  return client;
}

// Reads wait at most 10 s: that bounds a failure, nothing waits on it.
int ConnectLoopback(int port) { return filemesh::testing::ConnectLoopback(port, 10); }

// What a bare OpenSSL client saw of one handshake (and, when it succeeded,
// of one request sent after it).
struct Handshake {
  bool ok = false;
  std::string error;     // OpenSSL's reason, when !ok
  std::string peer_pem;  // the server's certificate, PEM
  std::string response;  // what came back for `request`, to the close
};

// The bare client writes to connections the server may have closed: that
// is an error to see, not a signal to die of.
const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

Handshake TlsExchange(int port, const std::string& ca, const std::string& cert = "",
                      const std::string& request = "", const char* server_name = "localhost") {
  Handshake out;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  SSL_CTX_load_verify_locations(ctx.get(), TestCertificates::Pem(ca).c_str(), nullptr);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!cert.empty()) {
    SSL_CTX_use_certificate_chain_file(ctx.get(), TestCertificates::Pem(cert).c_str());
    SSL_CTX_use_PrivateKey_file(ctx.get(), TestCertificates::Key(cert).c_str(), SSL_FILETYPE_PEM);
  }
  const int fd = ConnectLoopback(port);
  if (fd < 0) {
    out.error = "cannot connect";
    return out;
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  SSL_set_tlsext_host_name(ssl.get(), server_name);
  SSL_set1_host(ssl.get(), server_name);
  if (SSL_connect(ssl.get()) == 1) {
    out.ok = true;
    if (X509* peer = SSL_get1_peer_certificate(ssl.get())) {
      BIO* bio = BIO_new(BIO_s_mem());
      PEM_write_bio_X509(bio, peer);
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int)
      out.peer_pem.assign(data, static_cast<size_t>(n));
      BIO_free(bio);
      X509_free(peer);
    }
    if (!request.empty()) {
      SSL_write(ssl.get(), request.data(), static_cast<int>(request.size()));
      char buf[4096];
      int n;
      while ((n = SSL_read(ssl.get(), buf, sizeof(buf))) > 0) {
        out.response.append(buf, static_cast<size_t>(n));
      }
    }
    // TLS 1.3 client certificates are checked after the client's Finished:
    // a refusal arrives as an alert on the first read.
    if (out.response.empty() && !cert.empty() && request.empty()) {
      char byte;
      if (SSL_read(ssl.get(), &byte, 1) <= 0 && ERR_peek_error() != 0) out.ok = false;
    }
  }
  if (!out.ok || ERR_peek_error() != 0) {
    const unsigned long code = ERR_get_error();  // NOLINT(google-runtime-int)
    const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
    if (!out.ok) out.error = reason != nullptr ? reason : "closed";
  }
  ERR_clear_error();
  ::close(fd);
  return out;
}

TEST(HttpsServerTest, ServesOverTlsWithHstsAndKeepsTheConnection) {
  HttpServerOptions options = HttpsOptions();
  options.hsts_max_age = absl::Hours(24);
  std::vector<std::string> remotes;
  std::mutex mu;
  auto server = StartServer(options, [&](const HttpRequest& request) {
    std::lock_guard<std::mutex> lock(mu);
    remotes.push_back(request.remote_address);
    return HttpResponse{200, "text/plain", absl::StrCat("path=", request.path), {}};
  });
  auto client = ClientOf(*server);
  for (int i = 0; i < 3; ++i) {
    const auto result = client->Get(absl::StrCat("/n/", i).c_str());
    ASSERT_TRUE(result) << httplib::to_string(result.error());
    EXPECT_EQ(result->status, 200);
    EXPECT_EQ(result->body, absl::StrCat("path=/n/", i));
    EXPECT_EQ(result->get_header_value("Strict-Transport-Security"), "max-age=86400");
  }
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(remotes.size(), 3u);
  EXPECT_EQ(remotes[0], remotes[2]);  // one connection carried them all
}

TEST(HttpsServerTest, HstsCanBeTurnedOff) {
  HttpServerOptions options = HttpsOptions();
  options.hsts_max_age = absl::ZeroDuration();
  auto server = StartServer(options);
  const auto result = ClientOf(*server)->Get("/");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_FALSE(result->has_header("Strict-Transport-Security"));
}

TEST(HttpsServerTest, PlainHttpOnTheHttpsPortIsToldToUseHttps) {
  CapturedLog log;
  auto server = StartServer(HttpsOptions());
  httplib::Client plain("127.0.0.1", server->port());
  const auto result = plain.Get("/");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 400);
  EXPECT_THAT(result->body, HasSubstr("https://"));
  ASSERT_TRUE(testing::WaitFor([&] { return !log.Events("tls_handshake_failed").empty(); },
                               absl::Seconds(10)));
  EXPECT_THAT(log.Events("tls_handshake_failed")[0], HasSubstr("plain HTTP"));
}

TEST(HttpsServerTest, AClientTrustingAnotherCaRefusesTheServerAndTheServerLogsIt) {
  CapturedLog log;
  auto server = StartServer(HttpsOptions());
  const auto result = ClientOf(*server, "other-ca")->Get("/");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), httplib::Error::SSLServerVerification);
  const Handshake bare = TlsExchange(server->port(), "other-ca");
  EXPECT_FALSE(bare.ok);
  EXPECT_THAT(bare.error, HasSubstr("certificate verify failed"));
  ASSERT_TRUE(testing::WaitFor([&] { return !log.Events("tls_handshake_failed").empty(); },
                               absl::Seconds(10)));
  EXPECT_THAT(log.Events("tls_handshake_failed")[0], HasSubstr("unknown ca"));
}

TEST(HttpsServerTest, AServerCertificateForAnotherNameIsRefusedByTheClient) {
  auto server = StartServer(HttpsOptions("server-wrong-name"));
  const auto result = ClientOf(*server)->Get("/");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), httplib::Error::SSLServerVerification);
}

TEST(HttpsServerTest, OutOfDateOrMismatchedFilesStopTheStartWithTheFileNamed) {
  for (const char* name : {"server-expired", "server-future"}) {
    HttpServer server(HttpsOptions(name));
    const absl::Status status = server.Start(Echo());
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << name << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(name));
  }
  HttpServerOptions mismatched = HttpsOptions();
  mismatched.tls.key_file = TestCertificates::Key("client");
  HttpServer server(mismatched);
  const absl::Status status = server.Start(Echo());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("client.key"));

  HttpServerOptions peers = HttpsOptions("server", "ca");
  peers.tls.allowed_peers = {"gateway"};
  HttpServer refused(peers);
  EXPECT_EQ(refused.Start(Echo()).code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpsServerTest, WithACaOnlyClientsWithACertificateOfItAreServed) {
  auto server = StartServer(HttpsOptions("server", "ca"));
  const auto with = ClientOf(*server, "ca", "client")->Get("/");
  ASSERT_TRUE(with) << httplib::to_string(with.error());
  EXPECT_EQ(with->status, 200);
  EXPECT_FALSE(ClientOf(*server)->Get("/"));                           // no certificate
  EXPECT_FALSE(ClientOf(*server, "ca", "client-other-ca")->Get("/"));  // another CA's
  EXPECT_FALSE(ClientOf(*server, "ca", "client-expired")->Get("/"));   // out of date
}

// A peer that opens a connection and never says a word of TLS is cut at the
// head timeout, and meanwhile (one I/O thread) others are served.
TEST(HttpsServerTest, AStalledHandshakeEndsAtTheHeadTimeoutAndBlocksNoOne) {
  CapturedLog log;
  HttpServerOptions options = HttpsOptions();
  options.io_threads = 1;
  options.head_timeout = absl::Milliseconds(300);
  auto server = StartServer(options);
  const int silent = ConnectLoopback(server->port());
  ASSERT_GE(silent, 0);
  const int half = ConnectLoopback(server->port());
  ASSERT_GE(half, 0);
  // The first bytes of a ClientHello record, and no more.
  const unsigned char partial[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
  ASSERT_EQ(::send(half, partial, sizeof(partial), MSG_NOSIGNAL), 6);

  const auto served = ClientOf(*server)->Get("/meanwhile");
  ASSERT_TRUE(served) << httplib::to_string(served.error());
  EXPECT_EQ(served->status, 200);

  char byte;
  EXPECT_EQ(::recv(silent, &byte, 1, 0), 0);  // closed by the server (bounded by SO_RCVTIMEO)
  EXPECT_EQ(::recv(half, &byte, 1, 0), 0);
  ::close(silent);
  ::close(half);
  ASSERT_TRUE(testing::WaitFor([&] { return !log.Events("tls_handshake_failed").empty(); },
                               absl::Seconds(10)));
  EXPECT_THAT(log.Events("tls_handshake_failed")[0], HasSubstr("no handshake within 300ms"));
}

TEST(HttpsServerTest, LimitsHoldOverTls) {
  HttpServerOptions options = HttpsOptions();
  options.max_head_bytes = 1024;
  options.max_connections = 1;
  auto server = StartServer(options);
  // An oversized head: 431, as over plain HTTP.
  const Handshake big = TlsExchange(
      server->port(), "ca", "",
      absl::StrCat("GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", std::string(2048, 'a'), "\r\n\r\n"));
  ASSERT_TRUE(big.ok) << big.error;
  EXPECT_TRUE(absl::StartsWith(big.response, "HTTP/1.1 431 ")) << big.response;
  // One connection open: the next is closed without a handshake.
  ASSERT_TRUE(testing::WaitFor([&] { return server->connections() == 0; }, absl::Seconds(10)));
  auto holder = ClientOf(*server);
  ASSERT_TRUE(holder->Get("/hold"));
  const Handshake second = TlsExchange(server->port(), "ca");
  EXPECT_FALSE(second.ok);
}

TEST(HttpsServerTest, LargeAndPipelinedResponsesArriveWhole) {
  const std::string large(3 * 1024 * 1024 + 17, 'z');
  auto server = StartServer(HttpsOptions(), [&](const HttpRequest& request) {
    return HttpResponse{200, "text/plain", request.path == "/large" ? large : request.path, {}};
  });
  auto client = ClientOf(*server);
  const auto result = client->Get("/large");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->body.size(), large.size());
  EXPECT_EQ(result->body, large);
  // Two requests in one TLS write: both answered, in order.
  const Handshake both = TlsExchange(server->port(), "ca", "",
                                     "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two "
                                     "HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(both.ok) << both.error;
  const size_t one = both.response.find("\r\n\r\n/one");
  const size_t two = both.response.find("\r\n\r\n/two");
  ASSERT_NE(one, std::string::npos) << both.response;
  ASSERT_NE(two, std::string::npos) << both.response;
  EXPECT_LT(one, two);
}

// Certificates replaced on disk are served to new connections within a few
// seconds; a client making requests all along sees none fail.
TEST(HttpsServerTest, ARotatedCertificateIsServedWithoutARestartOrAFailedRequest) {
  const std::string dir = TestCertificates::Dir() + "/https-rotation";
  std::filesystem::create_directories(dir);
  TestCertificates::Replace(TestCertificates::Pem("server"), dir + "/cert.pem");
  TestCertificates::Replace(TestCertificates::Key("server"), dir + "/cert.key");
  HttpServerOptions options = HttpsOptions();
  options.tls.cert_file = dir + "/cert.pem";
  options.tls.key_file = dir + "/cert.key";
  options.tls.reload_interval = absl::Seconds(1);
  auto server = StartServer(options);
  const std::string before = TlsExchange(server->port(), "ca").peer_pem;
  ASSERT_EQ(before, TestCertificates::Read(TestCertificates::Pem("server")));

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::atomic<int> failed{0};
  std::thread caller([&] {
    while (!stop.load() && sent.load() < 100000) {
      auto client = ClientOf(*server);  // a new connection each time
      ++sent;
      const auto result = client->Get("/");
      if (!result || result->status != 200) ++failed;
    }
  });
  // The key first, then the certificate, as a careless rotation might: the
  // pair does not match in between, and the old context stays meanwhile.
  TestCertificates::Replace(TestCertificates::Key("server-rotated"), dir + "/cert.key");
  TestCertificates::Replace(TestCertificates::Pem("server-rotated"), dir + "/cert.pem");
  const std::string rotated = TestCertificates::Read(TestCertificates::Pem("server-rotated"));
  EXPECT_TRUE(testing::WaitFor(
      [&] { return TlsExchange(server->port(), "ca").peer_pem == rotated; }, absl::Seconds(10)));
  stop = true;
  caller.join();
  EXPECT_GT(sent.load(), 0);
  EXPECT_EQ(failed.load(), 0) << "of " << sent.load();
}

}  // namespace
}  // namespace filemesh
