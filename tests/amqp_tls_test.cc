// AMQP over TLS (amqps://) against private RabbitMQ nodes that listen with
// TLS only, with certificates made by the openssl command
// (tests/tls/make_certs.sh): a service and a client meet over the broker,
// and a plain-text client, a broker another CA signed, a broker whose
// certificate names another host or has expired are refused with the reason;
// EXTERNAL logs in as the client certificate's name.

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "filemesh/rpc/clients.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rabbitmq/broker.h"
#include "rpc_test_support.h"
#include "tls_test_support.h"
#include "wait_for.h"

namespace filemesh {
namespace {

using ::testing::HasSubstr;
using testing::RabbitNode;
using testing::TestCertificates;

const auto* const kOpenSsl =
    ::testing::AddGlobalTestEnvironment(new testing::OpenSslWithoutAtExitEnvironment);

class AmqpTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    node_ = RabbitNode::Start(&error, TestCertificates::Dir()).release();
    ASSERT_NE(node_, nullptr) << error;
  }
  static void TearDownTestSuite() {
    delete node_;
    node_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(node_, nullptr);
    prefix_ =
        absl::StrCat("tls.", ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".");
  }

  AmqpOptions Amqp(const std::string& url, TlsOptions tls) const {
    AmqpOptions amqp;
    amqp.url = url;
    amqp.tls = std::move(tls);
    amqp.queue_prefix = prefix_;
    amqp.connect_timeout = absl::Seconds(3);
    return amqp;
  }
  std::unique_ptr<ServiceHost> Host(const AmqpOptions& amqp) {
    ServiceHostOptions options;
    options.amqp = amqp;
    options.reconnect_backoff_min = absl::Milliseconds(50);
    options.reconnect_backoff_max = absl::Milliseconds(200);
    auto host = std::make_unique<ServiceHost>(options);
    host->AddFileLister(*service_.lister);
    const absl::Status status = host->Start();
    EXPECT_TRUE(status.ok()) << status;
    return host;
  }
  absl::StatusOr<std::shared_ptr<FailoverChannel>> Channel(const AmqpOptions& amqp) {
    FailoverChannelOptions options;
    options.amqp = amqp;
    options.reconnect_backoff_min = absl::Milliseconds(50);
    options.reconnect_backoff_max = absl::Milliseconds(200);
    return FailoverChannel::Create(options);
  }
  static absl::StatusOr<v1::ListResponse> ListDocs(const std::shared_ptr<FailoverChannel>& channel,
                                                   CallInfo* info = nullptr) {
    FileListerClient client(channel);
    v1::ListRequest request;
    request.set_path("docs");
    return client.List(request, absl::Now() + absl::Seconds(3), info);
  }
  // What a channel with `amqp` answers once it has tried to connect: the
  // first call may come before the first attempt ended.
  absl::Status RefusedWith(const AmqpOptions& amqp) {
    absl::StatusOr<std::shared_ptr<FailoverChannel>> channel = Channel(amqp);
    if (!channel.ok()) return channel.status();
    absl::Status last;
    testing::WaitFor(
        [&] {
          last = ListDocs(*channel).status();
          return absl::StrContains(last.message(), "not connected: ");
        },
        absl::Seconds(10));
    return last;
  }

  static RabbitNode* node_;
  std::string prefix_;
  testing::SampleService service_;
};

RabbitNode* AmqpTlsTest::node_ = nullptr;

TEST_F(AmqpTlsTest, AServiceAndAClientMeetOverAmqps) {
  const AmqpOptions amqp = Amqp(node_->url(), TestCertificates::Client("ca", ""));
  auto host = Host(amqp);
  auto channel = Channel(amqp);
  ASSERT_TRUE(channel.ok()) << channel.status();
  CallInfo info;
  absl::StatusOr<v1::ListResponse> r;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        r = ListDocs(*channel, &info);
        return r.ok();
      },
      absl::Seconds(10)))
      << r.status();
  EXPECT_EQ(r->entries_size(), 2);
  EXPECT_EQ(info.served_by, TransportKind::kAmqp);
}

TEST_F(AmqpTlsTest, APlainTextClientGetsNoConnection) {
  const std::string plain = absl::StrCat("amqp://guest:guest@127.0.0.1:", node_->port(), "/");
  const absl::Status status = RefusedWith(Amqp(plain, TlsOptions{}));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("not connected: "));
}

TEST_F(AmqpTlsTest, AClientRefusesABrokerItsCaDidNotSign) {
  const absl::Status status =
      RefusedWith(Amqp(node_->url(), TestCertificates::Client("other-ca", "")));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("verif"));
}

TEST_F(AmqpTlsTest, ExternalLogsInAsTheCertificatesCommonName) {
  ASSERT_TRUE(node_->Ctl("add_user gateway unused-password"));
  ASSERT_TRUE(node_->Ctl("set_permissions -p / gateway '.*' '.*' '.*'"));
  const std::string external =
      absl::StrCat("amqps://localhost:", node_->port(), "/?auth_mechanism=external");
  AmqpOptions gateway = Amqp(external, TestCertificates::Client("ca", "client"));
  gateway.service_users = {"guest"};  // the service logs in as guest
  auto host = Host(Amqp(node_->url(), TestCertificates::Client("ca", "")));
  auto channel = Channel(gateway);
  ASSERT_TRUE(channel.ok()) << channel.status();
  absl::StatusOr<v1::ListResponse> r;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        r = ListDocs(*channel);
        return r.ok();
      },
      absl::Seconds(10)))
      << r.status();

  // No broker user is named like this certificate.
  const absl::Status intruder =
      RefusedWith(Amqp(external, TestCertificates::Client("ca", "intruder")));
  EXPECT_EQ(intruder.code(), absl::StatusCode::kUnavailable) << intruder;
  EXPECT_THAT(std::string(intruder.message()), HasSubstr("refused"));
}

TEST_F(AmqpTlsTest, OptionsThatCannotWorkFailAtCreation) {
  TlsOptions half = TestCertificates::Client("ca", "client");
  half.key_file.clear();
  EXPECT_EQ(Channel(Amqp(node_->url(), half)).status().code(), absl::StatusCode::kInvalidArgument);
  // TLS files for a plain-text URL.
  EXPECT_EQ(Channel(Amqp("amqp://guest:guest@127.0.0.1:5672/", TestCertificates::Client("ca", "")))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  // EXTERNAL without a client certificate.
  EXPECT_EQ(
      Channel(Amqp(absl::StrCat("amqps://localhost:", node_->port(), "/?auth_mechanism=external"),
                   TestCertificates::Client("ca", "")))
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  // An expired client certificate.
  EXPECT_EQ(
      Channel(Amqp(node_->url(), TestCertificates::Client("ca", "client-expired"))).status().code(),
      absl::StatusCode::kFailedPrecondition);
}

// Brokers of their own, presenting a certificate that has expired, is not
// valid yet, or names another host.
TEST(AmqpTlsBrokerCertificateTest, AClientRefusesAnOutOfDateOrMisnamedBroker) {
  for (const std::string name : {"server-expired", "server-future", "server-wrong-name"}) {
    SCOPED_TRACE(name);
    std::string error;
    std::unique_ptr<RabbitNode> node = RabbitNode::Start(&error, TestCertificates::Dir(), name);
    ASSERT_NE(node, nullptr) << error;
    FailoverChannelOptions options;
    options.amqp.url = node->url();
    options.amqp.tls = TestCertificates::Client("ca", "");
    options.amqp.connect_timeout = absl::Seconds(3);
    auto channel = FailoverChannel::Create(options);
    ASSERT_TRUE(channel.ok()) << channel.status();
    FileListerClient client(*channel);
    absl::Status last;
    testing::WaitFor(
        [&] {
          last = client.List(v1::ListRequest(), absl::Now() + absl::Seconds(3)).status();
          return absl::StrContains(last.message(), "not connected: ");
        },
        absl::Seconds(10));
    EXPECT_EQ(last.code(), absl::StatusCode::kUnavailable) << last;
    EXPECT_THAT(std::string(last.message()), HasSubstr("verif")) << last;
  }
}

}  // namespace
}  // namespace filemesh
