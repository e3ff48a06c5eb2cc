// A client and a server on a three-node RabbitMQ cluster of private nodes
// (tests/rabbitmq/broker.h, RabbitCluster) ride through the loss of the node
// they are connected to.

#include <atomic>
#include <cstdio>
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
using filemesh::testing::RabbitCluster;
using filemesh::testing::WaitFor;

constexpr absl::Duration kSettle = absl::Seconds(60);

class AmqpClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    cluster_ = RabbitCluster::Start(3, &error).release();
    ASSERT_NE(cluster_, nullptr) << "cannot start a RabbitMQ cluster: " << error;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(cluster_, nullptr); }

  // Both sides list every node, `first` first; quorum queues by default.
  static AmqpServerOptions ServerOptions(EchoService& service, int first) {
    AmqpServerOptions options;
    options.amqp.url = cluster_->Urls("guest", "guest", first);
    options.amqp.heartbeat = absl::Seconds(2);
    options.reconnect_backoff_min = absl::Milliseconds(50);
    options.reconnect_backoff_max = absl::Milliseconds(500);
    options.services = {kListerService};
    options.dispatch = service.dispatcher();
    return options;
  }
  static FailoverChannelOptions ClientOptions(int first) {
    FailoverChannelOptions options;
    options.amqp.url = cluster_->Urls("guest", "guest", first);
    options.amqp.heartbeat = absl::Seconds(2);
    options.reconnect_backoff_min = absl::Milliseconds(50);
    options.reconnect_backoff_max = absl::Milliseconds(500);
    return options;
  }

  static RabbitCluster* cluster_;
};

RabbitCluster* AmqpClusterTest::cluster_ = nullptr;

TEST_F(AmqpClusterTest, EveryQueueIsAQuorumQueue) {
  EchoService service;
  auto server = AmqpServer::Create(ServerOptions(service, 1));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  auto client = AmqpTransport::Create(ClientOptions(2));
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(WaitFor([&] { return (*client)->Connected() && (*server)->Connected(); }, kSettle));
  TransportResult result =
      (*client)->Call(kListMethod, ListRequestBytes("q"), absl::Now() + kSettle);
  ASSERT_TRUE(result.response.ok()) << result.response.status();

  std::string queues;
  ASSERT_TRUE(cluster_->node(0).Ctl("list_queues --quiet --no-table-headers name type", &queues));
  // Service queue, its dead-letter queue and the client's reply queue.
  for (const std::string& name : {std::string(kListerService), std::string(kListerService) + ".dlq",
                                  (*client)->reply_queue()}) {
    EXPECT_NE(queues.find(name + "\tquorum"), std::string::npos) << name << " in:\n" << queues;
  }
  EXPECT_EQ(queues.find("\tclassic"), std::string::npos) << queues;
  (*server)->Shutdown(absl::Seconds(5));
}

// Runs last: the cluster has two nodes after it.
TEST_F(AmqpClusterTest, CallsRideThroughTheLossOfTheirNode) {
  // Client and server both on node 0, which is killed under load.
  EchoService service;
  auto server = AmqpServer::Create(ServerOptions(service, 0));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  auto created = AmqpTransport::Create(ClientOptions(0));
  ASSERT_TRUE(created.ok()) << created.status();
  AmqpTransport& client = **created;
  ASSERT_TRUE(WaitFor([&] { return client.Connected() && (*server)->Connected(); }, kSettle));

  // Every call must be answered, with its own answer: no error, however
  // the node's loss finds it (in the outbox, published but not confirmed,
  // confirmed and queued, being served, its reply on the way).
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::mutex mu;
  std::string first_failure;
  std::atomic<bool> stop{false};
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 100000 && !stop.load(); ++i) {
        const std::string path = "c" + std::to_string(t) + "/" + std::to_string(i);
        TransportResult r = client.Call(kListMethod, ListRequestBytes(path), absl::Now() + kSettle);
        if (r.response.ok() && *r.response == ExpectedListResponse(path)) {
          ++ok;
          continue;
        }
        ++failed;
        std::lock_guard<std::mutex> lock(mu);
        if (first_failure.empty()) {
          first_failure =
              path + ": " +
              (r.response.ok() ? std::string("wrong answer") : r.response.status().ToString());
        }
      }
    });
  }

  ASSERT_TRUE(WaitFor([&] { return ok.load() >= 200; }, kSettle));
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(cluster_->node(0).Kill());
  const int before = ok.load();
  EXPECT_TRUE(WaitFor([&] { return ok.load() >= before + 500; }, kSettle))
      << "answered since the kill: " << ok.load() - before;
  const absl::Duration recovered = absl::Now() - killed;
  stop = true;
  for (std::thread& t : callers) t.join();

  EXPECT_EQ(failed.load(), 0) << first_failure;
  EXPECT_TRUE(client.Connected());
  EXPECT_TRUE((*server)->Connected());
  std::printf(
      "[   INFO   ] answered %d, failed %d, resent %llu, 500 answers after the kill in %s\n",
      ok.load(), failed.load(), static_cast<unsigned long long>(client.resent()),
      absl::FormatDuration(recovered).c_str());
  (*server)->Shutdown(absl::Seconds(5));
}

}  // namespace
}  // namespace filemesh::internal
