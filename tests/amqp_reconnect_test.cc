// A client and a server ride through a broker restart (on a node of this
// test's own, since it is stopped midway).

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "rabbitmq/broker.h"
#include "rabbitmq/echo_service.h"
#include "rpc/amqp_server.h"
#include "rpc/amqp_transport.h"
#include "wait_for.h"

namespace filemesh::internal {
namespace {

using filemesh::testing::EchoService;
using filemesh::testing::ExpectedListResponse;
using filemesh::testing::kListerService;
using filemesh::testing::kListMethod;
using filemesh::testing::ListRequestBytes;
using filemesh::testing::RabbitNode;
using filemesh::testing::WaitFor;

constexpr absl::Duration kSettle = absl::Seconds(60);

struct Outcomes {
  std::atomic<int> ok{0};
  std::atomic<int> unavailable{0};
  std::atomic<int> other{0};
  std::mutex mu;
  std::string first_other;

  void Other(const std::string& what) {
    ++other;
    std::lock_guard<std::mutex> lock(mu);
    if (first_other.empty()) first_other = what;
  }
};

// One node for the suite, restarted by its tests.
class AmqpReconnectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    node_ = RabbitNode::Start(&error).release();
    ASSERT_NE(node_, nullptr) << error;
  }
  static void TearDownTestSuite() {
    delete node_;
    node_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(node_, nullptr); }

  static AmqpServerOptions ServerOptions(EchoService& service) {
    AmqpServerOptions options;
    options.amqp.url = node_->url();
    options.amqp.heartbeat = absl::Seconds(2);
    options.reconnect_backoff_min = absl::Milliseconds(50);
    options.reconnect_backoff_max = absl::Milliseconds(500);
    options.services = {kListerService};
    options.dispatch = service.dispatcher();
    return options;
  }

  static FailoverChannelOptions ClientOptions() {
    FailoverChannelOptions options;
    options.amqp.url = node_->url();
    options.amqp.heartbeat = absl::Seconds(2);
    options.reconnect_backoff_min = absl::Milliseconds(50);
    options.reconnect_backoff_max = absl::Milliseconds(500);
    return options;
  }

  static RabbitNode* node_;
};

RabbitNode* AmqpReconnectTest::node_ = nullptr;

TEST_F(AmqpReconnectTest, ClientAndServerRideThroughABrokerRestart) {
  RabbitNode* node = node_;
  EchoService service;
  auto server = AmqpServer::Create(ServerOptions(service));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());

  auto created = AmqpTransport::Create(ClientOptions());
  ASSERT_TRUE(created.ok()) << created.status();
  AmqpTransport& client = **created;
  ASSERT_TRUE(WaitFor([&] { return client.Connected() && (*server)->Connected(); }, kSettle));

  // Callers keep calling through the restart. Each call must end either
  // served (with its own answer) or Unavailable at once (not confirmed, so
  // not stored): a confirmed request whose reply went missing would end in
  // DeadlineExceeded instead.
  Outcomes outcomes;
  std::atomic<bool> stop{false};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 100000 && !stop.load(); ++i) {
        const std::string path = "r" + std::to_string(t) + "/" + std::to_string(i);
        TransportResult r = client.Call(kListMethod, ListRequestBytes(path), absl::Now() + kSettle);
        if (r.response.ok()) {
          if (*r.response == ExpectedListResponse(path)) {
            ++outcomes.ok;
          } else {
            outcomes.Other("wrong answer for " + path);
          }
        } else if (r.response.status().code() == absl::StatusCode::kUnavailable) {
          ++outcomes.unavailable;
          // Do not spin while the broker is away.
          WaitFor([&] { return stop.load() || client.Connected(); }, kSettle);
        } else {
          outcomes.Other(r.response.status().ToString());
        }
      }
    });
  }

  ASSERT_TRUE(WaitFor([&] { return outcomes.ok.load() >= 50; }, kSettle));
  ASSERT_TRUE(node->Stop());
  EXPECT_TRUE(WaitFor([&] { return client.KnownUnavailable(); }, kSettle));
  EXPECT_FALSE((*server)->Connected());
  const absl::Time start = absl::Now();
  TransportResult down = client.Call(kListMethod, ListRequestBytes("down"), absl::Now() + kSettle);
  EXPECT_EQ(down.response.status().code(), absl::StatusCode::kUnavailable)
      << down.response.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));

  ASSERT_TRUE(node->StartAgain());
  EXPECT_TRUE(WaitFor([&] { return client.Connected() && (*server)->Connected(); }, kSettle))
      << "client: " << client.KnownUnavailable() << " server: " << (*server)->LastError();
  const int served_before = outcomes.ok.load();
  EXPECT_TRUE(WaitFor([&] { return outcomes.ok.load() >= served_before + 100; }, kSettle));
  stop = true;
  for (std::thread& t : callers) t.join();

  EXPECT_EQ(outcomes.other.load(), 0) << outcomes.first_other;
  EXPECT_GT(outcomes.ok.load(), 150);
  std::printf("[   INFO   ] served %d, unavailable %d\n", outcomes.ok.load(),
              outcomes.unavailable.load());

  // A fresh call after the restart is served.
  TransportResult after =
      client.Call(kListMethod, ListRequestBytes("after"), absl::Now() + kSettle);
  ASSERT_TRUE(after.response.ok()) << after.response.status();
  EXPECT_EQ(*after.response, ExpectedListResponse("after"));

  (*server)->Shutdown(absl::Seconds(5));
}

TEST_F(AmqpReconnectTest, QueuedRequestAndTheReplyQueueSurviveARestart) {
  auto created = AmqpTransport::Create(ClientOptions());
  ASSERT_TRUE(created.ok()) << created.status();
  AmqpTransport& client = **created;
  ASSERT_TRUE(WaitFor([&] { return client.Connected(); }, kSettle));

  // Nobody serves yet: the broker stores the request.
  TransportResult queued = client.Call(kListMethod, ListRequestBytes("durable", 5),
                                       absl::Now() + absl::Milliseconds(500));
  ASSERT_FALSE(queued.queued_id.empty()) << queued.response.status();

  ASSERT_TRUE(node_->Restart());
  ASSERT_TRUE(WaitFor([&] { return client.Connected(); }, kSettle));
  EXPECT_EQ(client.TakeLateReply(queued.queued_id).state, LateReply::State::kPending);

  // A server comes after the restart; the reply reaches the same client.
  EchoService service;
  auto server = AmqpServer::Create(ServerOptions(service));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  LateReply late;
  EXPECT_TRUE(WaitFor(
      [&] {
        late = client.TakeLateReply(queued.queued_id);
        return late.state != LateReply::State::kPending;
      },
      kSettle));
  ASSERT_EQ(late.state, LateReply::State::kDone);
  ASSERT_TRUE(late.response.ok()) << late.response.status();
  EXPECT_EQ(*late.response, ExpectedListResponse("durable", 5));
}

}  // namespace
}  // namespace filemesh::internal
