// gRPC over TLS and mutual TLS between real ServiceHosts and FailoverChannels
// on loopback, with certificates made by the openssl command
// (tests/tls/make_certs.sh): who is refused, with what error, and rotation
// of both sides' certificates while calls run.

#include "rpc/grpc_tls.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "captured_log.h"
#include "filemesh/rpc/clients.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "filemesh/service/address.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc_test_support.h"
#include "tls_test_support.h"
#include "wait_for.h"

namespace filemesh {
namespace {

using ::testing::HasSubstr;
using testing::TestCertificates;

const auto* const kOpenSsl =
    ::testing::AddGlobalTestEnvironment(new testing::OpenSslWithoutAtExitEnvironment);

class GrpcTlsTest : public ::testing::Test {
 protected:
  // A host serving the sample tree on a free loopback port with `tls`.
  absl::Status Start(const TlsOptions& tls, ServiceHostOptions options = {}) {
    if (options.grpc_listen.empty()) options.grpc_listen = testing::LoopbackListenAddress();
    options.grpc_tls = tls;
    host_ = std::make_unique<ServiceHost>(options);
    host_->AddFileLister(*service_.lister);
    return host_->Start();
  }
  std::string Target() const { return absl::StrCat("127.0.0.1:", host_->grpc_port()); }

  // Lists "docs" through a new gRPC-only channel with `tls`.
  absl::StatusOr<v1::ListResponse> List(const TlsOptions& tls) {
    absl::StatusOr<std::shared_ptr<FailoverChannel>> channel = Channel(tls);
    if (!channel.ok()) return channel.status();
    FileListerClient client(*channel);
    v1::ListRequest request;
    request.set_path("docs");
    return client.List(request, absl::Now() + absl::Seconds(5));
  }
  absl::StatusOr<std::shared_ptr<FailoverChannel>> Channel(const TlsOptions& tls) {
    FailoverChannelOptions options;
    options.grpc_target = Target();
    options.grpc_tls = tls;
    return FailoverChannel::Create(options);
  }

  testing::SampleService service_;
  std::unique_ptr<ServiceHost> host_;
};

TEST_F(GrpcTlsTest, MutualTlsServesACallerWithACertificateTheCaSigned) {
  ASSERT_TRUE(Start(TestCertificates::Server()).ok());
  absl::StatusOr<v1::ListResponse> r = List(TestCertificates::Client());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries_size(), 2);
}

TEST_F(GrpcTlsTest, ServerTlsWithoutACaAsksForNoClientCertificate) {
  ASSERT_TRUE(Start(TestCertificates::Server("server", "")).ok());
  absl::StatusOr<v1::ListResponse> r = List(TestCertificates::Client("ca", ""));
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST_F(GrpcTlsTest, APlainTextCallerIsRefused) {
  ASSERT_TRUE(Start(TestCertificates::Server()).ok());
  absl::StatusOr<v1::ListResponse> r = List(TlsOptions{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("it may require TLS"));
}

TEST_F(GrpcTlsTest, ATlsCallerRefusesAPlainTextServer) {
  ASSERT_TRUE(Start(TlsOptions{}).ok());
  absl::StatusOr<v1::ListResponse> r = List(TestCertificates::Client());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(GrpcTlsTest, ACallerRefusesAServerItsCaDidNotSign) {
  ASSERT_TRUE(Start(TestCertificates::Server("server-other-ca")).ok());
  absl::StatusOr<v1::ListResponse> r = List(TestCertificates::Client());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("certificate verify failed"));
}

TEST_F(GrpcTlsTest, ACallerRefusesAServerWhoseCertificateNamesAnotherHost) {
  ASSERT_TRUE(Start(TestCertificates::Server("server-wrong-name")).ok());
  absl::StatusOr<v1::ListResponse> r = List(TestCertificates::Client());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  // ...unless told that this is the name to expect.
  TlsOptions named = TestCertificates::Client();
  named.server_name = "elsewhere.invalid";
  absl::StatusOr<v1::ListResponse> ok = List(named);
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST_F(GrpcTlsTest, ACallerWithoutACertificateIsRefusedWhenTheServerHasACa) {
  ASSERT_TRUE(Start(TestCertificates::Server()).ok());
  absl::StatusOr<v1::ListResponse> r = List(TestCertificates::Client("ca", ""));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(GrpcTlsTest, ClientCertificatesCanBeOptional) {
  TlsOptions tls = TestCertificates::Server();
  tls.require_peer_certificate = false;
  ASSERT_TRUE(Start(tls).ok());
  absl::StatusOr<v1::ListResponse> without = List(TestCertificates::Client("ca", ""));
  EXPECT_TRUE(without.ok()) << without.status();
  // A certificate given is still verified.
  absl::StatusOr<v1::ListResponse> foreign =
      List(TestCertificates::Client("ca", "client-other-ca"));
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kUnavailable) << foreign.status();
}

TEST_F(GrpcTlsTest, ACallerWhoseCertificateAnotherCaSignedIsRefused) {
  ASSERT_TRUE(Start(TestCertificates::Server()).ok());
  absl::StatusOr<v1::ListResponse> r = List(TestCertificates::Client("ca", "client-other-ca"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("refuse this client's certificate"));
}

TEST_F(GrpcTlsTest, AllowedPeersNarrowTheCallersTheCaSigned) {
  CapturedLog log;
  TlsOptions tls = TestCertificates::Server();
  tls.allowed_peers = {"gateway"};
  ServiceHostOptions options;
  options.log_calls = true;
  ASSERT_TRUE(Start(tls, options).ok());
  absl::StatusOr<v1::ListResponse> intruder = List(TestCertificates::Client("ca", "intruder"));
  EXPECT_EQ(intruder.status().code(), absl::StatusCode::kPermissionDenied) << intruder.status();
  EXPECT_THAT(std::string(intruder.status().message()),
              HasSubstr("names none of the service's allowed peers"));
  ASSERT_FALSE(log.Events("tls_peer_refused").empty());
  EXPECT_THAT(log.Events("tls_peer_refused")[0], HasSubstr(" peer_names=intruder "));
  EXPECT_TRUE(log.Events("call").empty());

  absl::StatusOr<v1::ListResponse> gateway = List(TestCertificates::Client());
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  ASSERT_EQ(log.Events("call").size(), 1u);
  EXPECT_THAT(log.Events("call")[0], ::testing::EndsWith(" peer=gateway"));
}

TEST_F(GrpcTlsTest, TheHostRefusesToStartWithFilesItCannotUse) {
  const struct {
    TlsOptions tls;
    absl::StatusCode code;
    std::string says;
  } cases[] = {
      {TestCertificates::Server("server-expired"), absl::StatusCode::kFailedPrecondition,
       "expired at 2020-02-01T00:00:00Z"},
      {TestCertificates::Server("server-future"), absl::StatusCode::kFailedPrecondition,
       "is not valid before 2099-01-01T00:00:00Z"},
      {[] {
         TlsOptions tls = TestCertificates::Server();
         tls.key_file = TestCertificates::Key("client");
         return tls;
       }(),
       absl::StatusCode::kInvalidArgument, "is not the key of certificate"},
      {[] {
         TlsOptions tls = TestCertificates::Server();
         tls.cert_file += ".missing";
         return tls;
       }(),
       absl::StatusCode::kInvalidArgument, "cannot be opened"},
      {[] {
         TlsOptions tls = TestCertificates::Server();
         tls.ca_file = TestCertificates::Key("ca");  // a key, not a certificate
         return tls;
       }(),
       absl::StatusCode::kInvalidArgument, "no PEM certificate"},
      {[] {
         TlsOptions tls = TestCertificates::Server("server", "");
         tls.allowed_peers = {"gateway"};
         return tls;
       }(),
       absl::StatusCode::kInvalidArgument, "need a CA file"},
      {[] {
         TlsOptions tls;
         tls.ca_file = TestCertificates::Pem("ca");
         return tls;
       }(),
       absl::StatusCode::kInvalidArgument, "needs both a certificate file and its private key"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    const absl::Status status = Start(c.tls);
    EXPECT_EQ(status.code(), c.code) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.says));
  }
}

TEST_F(GrpcTlsTest, AClientRefusesToStartWithFilesItCannotUse) {
  ASSERT_TRUE(Start(TestCertificates::Server()).ok());
  absl::StatusOr<std::shared_ptr<FailoverChannel>> expired =
      Channel(TestCertificates::Client("ca", "client-expired"));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kFailedPrecondition) << expired.status();
  TlsOptions half = TestCertificates::Client();
  half.key_file.clear();
  EXPECT_EQ(Channel(half).status().code(), absl::StatusCode::kInvalidArgument);
}

// The other side of the expired-certificate checks: a peer that does present
// an out-of-date certificate (through gRPC directly, which does not check
// its own files) is refused by filemesh's side.
std::shared_ptr<grpc::experimental::StaticDataCertificateProvider> StaticFiles(
    const std::string& name, bool with_ca) {
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs = {
      {TestCertificates::Read(TestCertificates::Key(name)),
       TestCertificates::Read(TestCertificates::Pem(name))}};
  return std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      with_ca ? TestCertificates::Read(TestCertificates::Pem("ca")) : "", pairs);
}

bool RawClientConnects(const std::string& target, const std::string& client_name) {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(StaticFiles(client_name, /*with_ca=*/true));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  auto channel = grpc::CreateChannel(target, grpc::experimental::TlsCredentials(options));
  return channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(3));
}

TEST_F(GrpcTlsTest, TheHostRefusesAnExpiredClientCertificate) {
  ASSERT_TRUE(Start(TestCertificates::Server()).ok());
  EXPECT_TRUE(RawClientConnects(Target(), "client"));           // the raw client works...
  EXPECT_FALSE(RawClientConnects(Target(), "client-expired"));  // ...but not with this
}

TEST_F(GrpcTlsTest, AClientRefusesAServerPresentingAnExpiredCertificate) {
  for (const std::string name : {"server-expired", "server-future"}) {
    SCOPED_TRACE(name);
    grpc::experimental::TlsServerCredentialsOptions options(StaticFiles(name, false));
    options.watch_identity_key_cert_pairs();
    grpc::ServerBuilder builder;
    grpc::CallbackGenericService unimplemented;  // a server needs a service
    builder.RegisterCallbackGenericService(&unimplemented);
    int port = 0;
    builder.AddListeningPort(testing::LoopbackListenAddress(),
                             grpc::experimental::TlsServerCredentials(options), &port);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    ASSERT_NE(server, nullptr);
    FailoverChannelOptions channel_options;
    channel_options.grpc_target = absl::StrCat("127.0.0.1:", port);
    channel_options.grpc_tls = TestCertificates::Client();
    auto channel = FailoverChannel::Create(channel_options);
    ASSERT_TRUE(channel.ok()) << channel.status();
    FileListerClient client(*channel);
    absl::StatusOr<v1::ListResponse> r =
        client.List(v1::ListRequest(), absl::Now() + absl::Seconds(5));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    server->Shutdown();
  }
}

TEST(GrpcTlsAddressTest, PlainTextBeyondLoopbackNeedsInsecure) {
  EXPECT_TRUE(IsLoopbackListenAddress("127.0.0.1:1"));
  EXPECT_TRUE(IsLoopbackListenAddress("127.1.2.3:1"));
  EXPECT_TRUE(IsLoopbackListenAddress("[::1]:1"));
  EXPECT_TRUE(IsLoopbackListenAddress("localhost:1"));
  EXPECT_TRUE(IsLoopbackListenAddress("unix:/run/filemesh.sock"));
  EXPECT_FALSE(IsLoopbackListenAddress("0.0.0.0:1"));
  EXPECT_FALSE(IsLoopbackListenAddress("[::]:1"));
  EXPECT_FALSE(IsLoopbackListenAddress("10.1.2.3:1"));
  EXPECT_FALSE(IsLoopbackListenAddress("mserv1.example:1"));

  testing::SampleService service;
  ServiceHostOptions options;
  options.grpc_listen = absl::StrCat("0.0.0.0:", testing::UnusedLoopbackPort());
  {
    ServiceHost host(options);
    host.AddFileLister(*service.lister);
    const absl::Status status = host.Start();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("without TLS"));
  }
  CapturedLog log;
  options.insecure = true;
  ServiceHost host(options);
  host.AddFileLister(*service.lister);
  ASSERT_TRUE(host.Start().ok());
  EXPECT_EQ(log.Events("grpc_insecure").size(), 1u);
}

// What a shell command prints, trimmed.
std::string CommandOutput(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[256];
    while (fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
    pclose(pipe);
  }
  return std::string(absl::StripAsciiWhitespace(out));
}

// The serial number of the certificate the server at `port` presents now.
std::string ServedSerial(int port) {
  return CommandOutput(absl::StrCat(
      "openssl s_client -connect 127.0.0.1:", port, " -alpn h2 -CAfile ",
      TestCertificates::Pem("ca"), " -cert ", TestCertificates::Pem("client"), " -key ",
      TestCertificates::Key("client"), " </dev/null 2>/dev/null | openssl x509 -noout -serial"));
}

std::string FileSerial(const std::string& pem) {
  return CommandOutput("openssl x509 -noout -serial -in " + pem);
}

// Both sides' certificates are replaced on disk while a caller keeps
// calling: the server presents the new one to new handshakes, the client's
// connection is renewed (max connection age) with its new certificate, and
// no call fails.
TEST_F(GrpcTlsTest, RotatedCertificatesArePickedUpWithCallsRunningAndNoneFailing) {
  const std::string dir = TestCertificates::Dir() + "/rotation";
  std::filesystem::create_directories(dir);
  for (const char* name : {"server", "client"}) {
    TestCertificates::Replace(TestCertificates::Pem(name), absl::StrCat(dir, "/", name, ".pem"));
    TestCertificates::Replace(TestCertificates::Key(name), absl::StrCat(dir, "/", name, ".key"));
  }
  TlsOptions server_tls = TestCertificates::Server();
  server_tls.cert_file = dir + "/server.pem";
  server_tls.key_file = dir + "/server.key";
  TlsOptions client_tls = TestCertificates::Client();
  client_tls.cert_file = dir + "/client.pem";
  client_tls.key_file = dir + "/client.key";

  CapturedLog log;
  ServiceHostOptions options;
  options.log_calls = true;
  options.grpc_max_connection_age = absl::Milliseconds(500);
  ASSERT_TRUE(Start(server_tls, options).ok());
  absl::StatusOr<std::shared_ptr<FailoverChannel>> channel = Channel(client_tls);
  ASSERT_TRUE(channel.ok()) << channel.status();
  FileListerClient client(*channel);

  std::atomic<bool> stop{false};
  std::atomic<int> calls{0};
  std::vector<std::string> failures;
  std::thread caller([&] {
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    v1::ListRequest request;
    request.set_path("docs");
    while (!stop.load() && calls.load() < 100000 && absl::Now() < give_up) {
      absl::StatusOr<v1::ListResponse> r = client.List(request, absl::Now() + absl::Seconds(5));
      if (!r.ok()) failures.push_back(r.status().ToString());
      ++calls;
    }
  });
  ASSERT_TRUE(testing::WaitFor([&] { return calls.load() > 10; }, absl::Seconds(10)));

  const std::string rotated_serial = FileSerial(TestCertificates::Pem("server-rotated"));
  ASSERT_NE(ServedSerial(host_->grpc_port()), rotated_serial);
  TestCertificates::Replace(TestCertificates::Key("server-rotated"), dir + "/server.key");
  TestCertificates::Replace(TestCertificates::Pem("server-rotated"), dir + "/server.pem");
  EXPECT_TRUE(testing::WaitFor([&] { return ServedSerial(host_->grpc_port()) == rotated_serial; },
                               absl::Seconds(15)));

  TestCertificates::Replace(TestCertificates::Key("client-rotated"), dir + "/client.key");
  TestCertificates::Replace(TestCertificates::Pem("client-rotated"), dir + "/client.pem");
  const auto served_rotated_client = [&] {
    const std::vector<std::string> lines = log.Events("call");
    return !lines.empty() && absl::EndsWith(lines.back(), " peer=gateway-2");
  };
  EXPECT_TRUE(testing::WaitFor(served_rotated_client, absl::Seconds(15)));
  const int before = calls.load();
  EXPECT_TRUE(testing::WaitFor([&] { return calls.load() > before + 10; }, absl::Seconds(10)));
  stop = true;
  caller.join();
  EXPECT_THAT(failures, ::testing::IsEmpty());
  EXPECT_GT(calls.load(), 20);
}

}  // namespace
}  // namespace filemesh
