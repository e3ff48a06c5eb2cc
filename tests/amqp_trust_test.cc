// Replies a client can believe, on a real broker with the users and
// permissions docs/protocol.md gives (not guest): a service user answers a
// gateway user; a reply from anyone else (right correlation id, wrong or no
// user_id) is dropped and counted; a request whose reply_to lies outside the
// reply namespace is dead-lettered unanswered.

#include <future>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "captured_log.h"
#include "filemesh/rpc/clients.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/rpc/methods.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rabbitmq/amqp_admin.h"
#include "rabbitmq/broker.h"
#include "rpc_test_support.h"
#include "wait_for.h"

namespace filemesh {
namespace {

using testing::AmqpAdmin;
using testing::RawMessage;

const auto* const kBroker =
    ::testing::AddGlobalTestEnvironment(new filemesh::testing::SharedBrokerEnvironment);

constexpr char kPrefix[] = "trust.";

// The users of docs/protocol.md ("Broker users and permissions") for the
// queue prefix "trust." and the list service: each made once per node.
void AddUsers(testing::RabbitNode& node) {
  static bool added = false;
  if (added) return;
  added = true;
  const auto set = [&node](const std::string& user, const std::string& configure,
                           const std::string& write, const std::string& read) {
    ASSERT_TRUE(node.Ctl("add_user " + user + " " + user + "-password"));
    ASSERT_TRUE(node.Ctl("set_permissions -p / " + user + " '" + configure + "' '" + write + "' '" +
                         read + "'"));
  };
  // The service: its queue and dead-letter queue, the dead-letter exchange.
  set("mserv1", R"(^(trust\.filemesh\.v1\.FileLister(\.dlq)?|filemesh\.dlx)$)",
      R"(^(trust\.filemesh\.v1\.FileLister\.dlq|filemesh\.dlx|amq\.default)$)",
      R"(^(trust\.filemesh\.v1\.FileLister(\.dlq)?|filemesh\.dlx)$)");
  // The gateway: the same, and its reply queues.
  set("gateway",
      R"(^(trust\.(filemesh\.v1\.FileLister(\.dlq)?|filemesh\.reply\..+)|filemesh\.dlx)$)",
      R"(^(trust\.filemesh\.v1\.FileLister\.dlq|filemesh\.dlx|amq\.default)$)",
      R"(^(trust\.(filemesh\.v1\.FileLister(\.dlq)?|filemesh\.reply\..+)|filemesh\.dlx)$)");
  // May publish anywhere, configure and read nothing.
  set("intruder", "^$", R"(^amq\.default$)", "^$");
}

class AmqpTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = testing::SharedBroker();
    ASSERT_NE(node_, nullptr);
    AddUsers(*node_);
  }

  std::unique_ptr<ServiceHost> Host() {
    ServiceHostOptions options;
    options.amqp.url = node_->UrlFor("mserv1", "mserv1-password");
    options.amqp.queue_prefix = kPrefix;
    options.log_calls = true;
    auto host = std::make_unique<ServiceHost>(options);
    host->AddFileLister(*service_.lister);
    EXPECT_TRUE(host->Start().ok());
    return host;
  }
  std::shared_ptr<FailoverChannel> Channel() {
    FailoverChannelOptions options;
    options.amqp.url = node_->UrlFor("gateway", "gateway-password");
    options.amqp.queue_prefix = kPrefix;
    options.amqp.service_users = {"mserv1"};
    auto channel = FailoverChannel::Create(options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }
  std::unique_ptr<AmqpAdmin> Admin(const std::string& user, const std::string& password) {
    std::string error;
    auto admin = AmqpAdmin::Connect(node_->UrlFor(user, password), &error);
    EXPECT_NE(admin, nullptr) << error;
    return admin;
  }
  static std::string ListBytes() {
    v1::ListRequest request;
    request.set_path("docs");
    return request.SerializeAsString();
  }

  testing::RabbitNode* node_ = nullptr;
  testing::SampleService service_;
};

TEST_F(AmqpTrustTest, AServiceUserAnswersAGatewayUser) {
  CapturedLog log;
  auto host = Host();
  auto channel = Channel();
  ASSERT_NE(channel, nullptr);
  FileListerClient client(channel);
  v1::ListRequest request;
  request.set_path("docs");
  absl::StatusOr<v1::ListResponse> r;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        r = client.List(request, absl::Now() + absl::Seconds(5));
        return r.ok();
      },
      absl::Seconds(20)))
      << r.status();
  EXPECT_EQ(r->entries_size(), 2);
  EXPECT_EQ(channel->stats().replies_refused, 0u);
  // The service knows who called: the user the broker vouched for.
  ASSERT_FALSE(log.Events("call").empty());
  EXPECT_THAT(log.Events("call").back(), ::testing::EndsWith(" peer=gateway"));
}

// No service runs: the test takes the request from the queue and answers it
// itself, first as the intruder (its own user_id, then none), then as the
// service user. Only the last answer is believed.
TEST_F(AmqpTrustTest, ARepliesFromAnyoneButAServiceUserAreDroppedAndCounted) {
  auto channel = Channel();
  ASSERT_NE(channel, nullptr);
  std::promise<CallResult> result;
  channel->CallAsync(kListMethod, ListBytes(), absl::Now() + absl::Seconds(30),
                     [&result](CallResult r) { result.set_value(std::move(r)); });
  auto guest = Admin("guest", "guest");
  ASSERT_NE(guest, nullptr);
  std::vector<RawMessage> requests =
      guest->Take(absl::StrCat(kPrefix, "filemesh.v1.FileLister"), 1, absl::Seconds(20));
  ASSERT_EQ(requests.size(), 1u);
  const RawMessage& request = requests[0];
  EXPECT_EQ(request.correlation_id.size(), 32u);  // 128 random bits
  EXPECT_EQ(request.user_id, "gateway");

  v1::ListResponse forged_listing;
  forged_listing.add_entries()->set_path("docs/forged.txt");
  RawMessage reply;
  reply.content_type = "application/x-protobuf";
  reply.correlation_id = request.correlation_id;
  reply.int_headers["grpc-status"] = 0;
  reply.body = forged_listing.SerializeAsString();
  auto intruder = Admin("intruder", "intruder-password");
  ASSERT_NE(intruder, nullptr);
  reply.user_id = "intruder";
  ASSERT_TRUE(intruder->Publish(request.reply_to, reply));
  reply.user_id.clear();
  ASSERT_TRUE(intruder->Publish(request.reply_to, reply));
  EXPECT_TRUE(
      testing::WaitFor([&] { return channel->stats().replies_refused == 2; }, absl::Seconds(10)));

  v1::ListResponse real_listing;
  real_listing.add_entries()->set_path("docs/a.txt");
  reply.body = real_listing.SerializeAsString();
  reply.user_id = "mserv1";
  auto service_user = Admin("mserv1", "mserv1-password");
  ASSERT_NE(service_user, nullptr);
  ASSERT_TRUE(service_user->Publish(request.reply_to, reply));
  CallResult answer = result.get_future().get();
  ASSERT_TRUE(answer.response.ok()) << answer.response.status();
  v1::ListResponse got;
  ASSERT_TRUE(got.ParseFromString(*answer.response));
  ASSERT_EQ(got.entries_size(), 1);
  EXPECT_EQ(got.entries(0).path(), "docs/a.txt");
  EXPECT_EQ(channel->stats().replies_refused, 2u);
}

TEST_F(AmqpTrustTest, ARequestWhoseReplyToIsOutsideTheNamespaceIsDeadLetteredUnanswered) {
  CapturedLog log;
  auto host = Host();
  ASSERT_TRUE(testing::WaitFor([&] { return host->amqp_connected(); }, absl::Seconds(20)));
  auto guest = Admin("guest", "guest");
  ASSERT_NE(guest, nullptr);
  const std::string victim = absl::StrCat(kPrefix, "victim");
  ASSERT_TRUE(guest->DeclareQueue(victim));
  RawMessage request;
  request.content_type = "application/x-protobuf";
  request.type = kListMethod;
  request.correlation_id = "c-misdirected";
  request.reply_to = victim;
  request.body = ListBytes();
  auto intruder = Admin("intruder", "intruder-password");
  ASSERT_NE(intruder, nullptr);
  ASSERT_TRUE(intruder->Publish(absl::StrCat(kPrefix, "filemesh.v1.FileLister"), request));
  ASSERT_TRUE(testing::WaitFor([&] { return !log.Events("amqp_request_refused").empty(); },
                               absl::Seconds(10)));
  EXPECT_THAT(log.Events("amqp_request_refused")[0],
              ::testing::HasSubstr(" reply_to=trust.victim "));
  EXPECT_EQ(guest->Stats(victim).messages, 0);
  const std::string dlq = absl::StrCat(kPrefix, "filemesh.v1.FileLister.dlq");
  EXPECT_TRUE(testing::WaitFor([&] { return guest->Stats(dlq).messages == 1; }, absl::Seconds(10)));
  EXPECT_TRUE(log.Events("call").empty());  // never ran
  ASSERT_TRUE(guest->DeleteQueue(victim));
}

}  // namespace
}  // namespace filemesh
