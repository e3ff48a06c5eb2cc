// The whole path with a real broker and real gRPC servers on loopback:
// FileListerClient -> FailoverChannel -> gRPC or RabbitMQ -> ServiceHost ->
// FileLister over a sample tree. One RabbitMQ node is shared by the binary;
// each test uses its own queue prefix, and the broker-restart test its own
// node.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "filemesh/rpc/clients.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "gtest/gtest.h"
#include "rabbitmq/amqp_admin.h"
#include "rabbitmq/broker.h"
#include "rpc_test_support.h"
#include "wait_for.h"

namespace filemesh {
namespace {

const auto* const kBroker =
    ::testing::AddGlobalTestEnvironment(new filemesh::testing::SharedBrokerEnvironment);

class FailoverEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(testing::SharedBroker(), nullptr);
    amqp_url_ = testing::SharedBroker()->url();
    prefix_ =
        absl::StrCat("e2e.", ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".");
  }

  std::unique_ptr<ServiceHost> Host(const std::string& grpc_listen, bool amqp) {
    ServiceHostOptions options;
    options.grpc_listen = grpc_listen;
    options.amqp.url = amqp ? amqp_url_ : "";
    options.amqp.queue_prefix = prefix_;
    options.threads = 4;
    auto host = std::make_unique<ServiceHost>(options);
    host->AddFileLister(*service_.lister);
    const absl::Status status = host->Start();
    EXPECT_TRUE(status.ok()) << status;
    return host;
  }

  std::shared_ptr<FailoverChannel> Channel(const std::string& grpc_target, bool amqp,
                                           FailoverPolicy policy = {}) {
    FailoverChannelOptions options;
    options.grpc_target = grpc_target;
    options.amqp.url = amqp ? amqp_url_ : "";
    options.amqp.queue_prefix = prefix_;
    options.reconnect_backoff_min = absl::Milliseconds(50);
    options.reconnect_backoff_max = absl::Milliseconds(500);
    options.policy = std::move(policy);
    auto channel = FailoverChannel::Create(options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }

  // Lists "docs"; checks the answer whoever served it.
  CallInfo ListDocs(FileListerClient& client, absl::Duration timeout = absl::Seconds(10)) {
    v1::ListRequest request;
    request.set_path("docs");
    CallInfo info;
    absl::StatusOr<v1::ListResponse> r = client.List(request, absl::Now() + timeout, &info);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      EXPECT_EQ(r->entries_size(), 2);
      if (r->entries_size() == 2) {
        EXPECT_EQ(r->entries(1).path(), "docs/b.md");
      }
    }
    return info;
  }

  static std::string Loopback(int port) { return absl::StrCat("127.0.0.1:", port); }

  testing::SampleService service_;
  std::string amqp_url_;
  std::string prefix_;
};

TEST_F(FailoverEndToEndTest, GrpcUpIsServedByGrpc) {
  auto host = Host(testing::LoopbackListenAddress(), /*amqp=*/true);
  // The first call also connects; give it room (sanitizer builds are slow).
  FailoverPolicy policy;
  policy.attempt_timeout = absl::Seconds(5);
  FileListerClient client(Channel(Loopback(host->grpc_port()), true, policy));
  for (int i = 0; i < 3; ++i) {
    const CallInfo info = ListDocs(client);
    EXPECT_EQ(info.served_by, TransportKind::kGrpc);
    EXPECT_EQ(info.attempts, 1);
  }
}

TEST_F(FailoverEndToEndTest, ClosedGrpcPortIsServedByAmqp) {
  auto host = Host("", /*amqp=*/true);
  FileListerClient client(Channel(Loopback(testing::UnusedLoopbackPort()), true));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ListDocs(client).served_by, TransportKind::kAmqp);
}

TEST_F(FailoverEndToEndTest, HangingGrpcServerIsServedByAmqpAfterTheAttemptTimeout) {
  testing::BlackholeServer blackhole;
  auto host = Host("", /*amqp=*/true);
  FailoverPolicy policy;
  policy.attempt_timeout = absl::Milliseconds(250);
  FileListerClient client(Channel(Loopback(blackhole.port()), true, policy));
  const absl::Time start = absl::Now();
  const CallInfo info = ListDocs(client);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(info.served_by, TransportKind::kAmqp);
  EXPECT_EQ(info.attempts, 2);
  EXPECT_LT(took, absl::Seconds(3)) << "attempt timeout plus an AMQP round trip";
}

TEST_F(FailoverEndToEndTest, BreakerOpensToAmqpAndClosesWhenGrpcIsBack) {
  auto grpc_host = Host(testing::LoopbackListenAddress(), /*amqp=*/false);
  auto amqp_host = Host("", /*amqp=*/true);
  const int port = grpc_host->grpc_port();
  FailoverPolicy policy;
  policy.breaker_failure_threshold = 3;
  policy.breaker_cooldown = absl::Milliseconds(300);
  auto channel = Channel(Loopback(port), true, policy);
  FileListerClient client(channel);
  EXPECT_EQ(ListDocs(client).served_by, TransportKind::kGrpc);

  grpc_host->Shutdown(absl::ZeroDuration());
  grpc_host.reset();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ListDocs(client).served_by, TransportKind::kAmqp);
  EXPECT_EQ(channel->breaker_state(), BreakerState::kOpen);
  const CallInfo while_open = ListDocs(client);
  EXPECT_EQ(while_open.served_by, TransportKind::kAmqp);
  EXPECT_EQ(while_open.attempts, 1);

  grpc_host = Host(Loopback(port), /*amqp=*/false);
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  CallInfo info;
  do {
    info = ListDocs(client);
  } while (info.served_by != TransportKind::kGrpc && absl::Now() < give_up);
  EXPECT_EQ(info.served_by, TransportKind::kGrpc);
  EXPECT_EQ(channel->breaker_state(), BreakerState::kClosed);
  EXPECT_GE(channel->stats().breaker_opened, 1u);
}

// A search whose whole answer would be about 40 MB: the searcher stops at its
// byte budget (15 MiB, under the 16 MiB message limit), and the truncated
// answer comes back over gRPC, and the same over AMQP when gRPC is down:
// never an error, never a failover.
TEST_F(FailoverEndToEndTest, AFortyMegabyteResultIsTruncatedByBytesOnBothTransports) {
  // 10,000 matches of ~4 KB each: deep 250-byte directory names make every
  // path about 3,800 bytes.
  std::string deep;
  for (int level = 0; level < 14; ++level) {
    deep += (level == 0 ? "" : "/") + std::string(250, static_cast<char>('a' + level));
    service_.tree.Dir(deep);
  }
  constexpr int kFiles = 10000;
  for (int i = 0; i < kFiles; ++i) {
    service_.tree.File(absl::StrCat(deep, "/", std::string(240, 'f'), 100000 + i, ".big"));
  }
  ServiceHostOptions options;
  options.grpc_listen = testing::LoopbackListenAddress();
  options.amqp.url = amqp_url_;
  options.amqp.queue_prefix = prefix_;
  options.threads = 2;
  ServiceHost host(options);
  host.AddFileSearcher(*service_.searcher);
  ASSERT_TRUE(host.Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return host.amqp_connected(); }, absl::Seconds(30)));

  v1::SearchRequest request;
  request.set_pattern("*.big");
  request.set_max_results(100000);
  const auto check = [&](FileSearcherClient& client, TransportKind want) {
    CallInfo info;
    absl::StatusOr<v1::SearchResponse> r =
        client.Search(request, absl::Now() + absl::Seconds(60), &info);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(info.served_by, want);
    if (want == TransportKind::kGrpc) {
      EXPECT_EQ(info.attempts, 1);  // no failover
    }
    EXPECT_TRUE(r->truncated());
    EXPECT_EQ(r->truncation_reason(), v1::TRUNCATION_REASON_MAX_BYTES);
    EXPECT_GT(r->matches_size(), 3000);
    EXPECT_LT(r->matches_size(), kFiles);
    EXPECT_LE(r->ByteSizeLong(), kDefaultMaxMessageBytes);
    EXPECT_GT(r->ByteSizeLong(), kDefaultMaxResponseBytes - 8192);
  };
  FailoverPolicy generous;
  generous.attempt_timeout = absl::Seconds(10);  // a cold start under sanitizers
  FileSearcherClient over_grpc(Channel(Loopback(host.grpc_port()), true, generous));
  check(over_grpc, TransportKind::kGrpc);
  FileSearcherClient over_amqp(Channel(Loopback(testing::UnusedLoopbackPort()), true, generous));
  check(over_amqp, TransportKind::kAmqp);
}

// A request body that does not parse is answered INVALID_ARGUMENT and
// dead-lettered (never offered to another replica); the host keeps serving.
TEST_F(FailoverEndToEndTest, AnUnparseableRequestIsAnsweredAndDeadLettered) {
  auto host = Host("", /*amqp=*/true);
  ASSERT_TRUE(testing::WaitFor([&] { return host->amqp_connected(); }, absl::Seconds(30)));
  std::string error;
  auto admin = testing::AmqpAdmin::Connect(amqp_url_, &error);
  ASSERT_NE(admin, nullptr) << error;
  const std::string queue = prefix_ + "filemesh.v1.FileLister";
  const std::string replies = prefix_ + "filemesh.reply.test";
  ASSERT_TRUE(admin->DeclareQueue(replies));
  testing::RawMessage poison;
  poison.content_type = "application/x-protobuf";
  poison.type = kListMethod;
  poison.correlation_id = "c-poison";
  poison.reply_to = replies;
  poison.body = std::string("\xff\xff\xff", 3);
  ASSERT_TRUE(admin->Publish(queue, poison));
  std::vector<testing::RawMessage> answers = admin->Take(replies, 1, absl::Seconds(30));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].correlation_id, "c-poison");
  EXPECT_EQ(answers[0].int_headers["grpc-status"], 3);  // INVALID_ARGUMENT
  std::vector<testing::RawMessage> dead = admin->Take(queue + ".dlq", 1, absl::Seconds(30));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].body, poison.body);
  FileListerClient client(Channel("", /*amqp=*/true));
  EXPECT_EQ(ListDocs(client).served_by, TransportKind::kAmqp);
}

TEST_F(FailoverEndToEndTest, ApplicationErrorsAreTheSameOverBothTransports) {
  auto host = Host(testing::LoopbackListenAddress(), /*amqp=*/true);
  FileListerClient over_grpc(Channel(Loopback(host->grpc_port()), false));
  FileListerClient over_amqp(Channel("", true));
  for (const std::string path : {"../escape", "missing", "docs/a.txt"}) {
    v1::ListRequest request;
    request.set_path(path);
    const absl::Status local = service_.lister->List(request).status();
    ASSERT_FALSE(local.ok()) << path;
    CallInfo grpc_info, amqp_info;
    const absl::Status g =
        over_grpc.List(request, absl::Now() + absl::Seconds(10), &grpc_info).status();
    const absl::Status a =
        over_amqp.List(request, absl::Now() + absl::Seconds(10), &amqp_info).status();
    EXPECT_EQ(grpc_info.served_by, TransportKind::kGrpc);
    EXPECT_EQ(amqp_info.served_by, TransportKind::kAmqp);
    EXPECT_EQ(g, local) << path;
    EXPECT_EQ(a, local) << path;
  }
  auto channel = Channel("", true);
  CallResult unknown =
      channel->Call("/filemesh.v1.FileLister/Nope", "", absl::Now() + absl::Seconds(10));
  EXPECT_EQ(unknown.response.status().code(), absl::StatusCode::kUnimplemented);
  CallResult garbage = channel->Call(kListMethod, "\xff\xff", absl::Now() + absl::Seconds(10));
  EXPECT_EQ(garbage.response.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FailoverEndToEndTest, QueuedRequestIsAnsweredByAHostStartedLater) {
  FileListerClient client(Channel("", true));
  v1::ListRequest request;
  request.set_path("docs");
  CallInfo info;
  absl::StatusOr<v1::ListResponse> r =
      client.List(request, absl::Now() + absl::Milliseconds(800), &info);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(info.queued) << r.status();
  EXPECT_EQ(info.served_by, TransportKind::kAmqp);
  EXPECT_EQ(client.TakeList(info.operation_id).state, LateReply::State::kPending);

  auto host = Host("", /*amqp=*/true);
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  Operation<v1::ListResponse> op;
  do {
    op = client.TakeList(info.operation_id);
  } while (op.state == LateReply::State::kPending && absl::Now() < give_up &&
           (absl::SleepFor(absl::Milliseconds(20)), true));
  ASSERT_EQ(op.state, LateReply::State::kDone);
  ASSERT_TRUE(op.response.ok()) << op.response.status();
  ASSERT_EQ(op.response->entries_size(), 2);
  EXPECT_EQ(op.response->entries(0).path(), "docs/a.txt");
  EXPECT_EQ(client.TakeList(info.operation_id).state, LateReply::State::kUnknown);
}

TEST_F(FailoverEndToEndTest, ManyThreadsWhileTheGrpcServerStopsAndStarts) {
  auto grpc_host = Host(testing::LoopbackListenAddress(), /*amqp=*/false);
  auto amqp_host = Host("", /*amqp=*/true);
  const int port = grpc_host->grpc_port();
  FailoverPolicy policy;
  policy.breaker_cooldown = absl::Milliseconds(100);
  FileListerClient client(Channel(Loopback(port), true, policy));

  constexpr int kThreads = 64;
  constexpr int kCallsEach = 500;
  std::atomic<int> done{0}, wrong{0}, by_grpc{0}, by_amqp{0};
  std::mutex error_mu;
  std::string first_error;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsEach; ++i) {
        // Each call names its own directory, so a crossed reply would show.
        v1::ListRequest request;
        request.set_path((t + i) % 2 == 0 ? "docs" : "src");
        CallInfo info;
        auto r = client.List(request, absl::Now() + absl::Seconds(30), &info);
        const std::string want = request.path() == "docs" ? "docs/a.txt" : "src/main.cc";
        if (!r.ok() || r->entries_size() == 0 || r->entries(0).path() != want) {
          ++wrong;
          std::lock_guard<std::mutex> lock(error_mu);
          if (first_error.empty()) first_error = r.status().ToString();
        }
        if (info.served_by == TransportKind::kGrpc) ++by_grpc;
        if (info.served_by == TransportKind::kAmqp) ++by_amqp;
        ++done;
      }
    });
  }
  constexpr int kTotal = kThreads * kCallsEach;
  for (int step = 1; step < 8; ++step) {
    const int target = kTotal * step / 8;
    while (done.load() < target) std::this_thread::yield();
    if (grpc_host != nullptr) {
      grpc_host->Shutdown(absl::ZeroDuration());
      grpc_host.reset();
    } else {
      grpc_host = Host(Loopback(port), /*amqp=*/false);
    }
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0) << "first: " << first_error;
  EXPECT_GT(by_grpc.load(), 0);
  EXPECT_GT(by_amqp.load(), 0);
  EXPECT_EQ(by_grpc.load() + by_amqp.load(), kTotal);
}

TEST_F(FailoverEndToEndTest, HostAndClientReconnectAfterABrokerRestart) {
  std::string error;
  std::unique_ptr<testing::RabbitNode> node = testing::RabbitNode::Start(&error);
  ASSERT_NE(node, nullptr) << error;
  amqp_url_ = node->url();
  auto host = Host("", /*amqp=*/true);
  auto channel = Channel("", true);
  FileListerClient client(channel);
  EXPECT_EQ(ListDocs(client).served_by, TransportKind::kAmqp);

  ASSERT_TRUE(node->Restart());
  // Calls fail fast while both sides reconnect, then succeed again.
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  v1::ListRequest request;
  request.set_path("docs");
  absl::StatusOr<v1::ListResponse> r;
  do {
    r = client.List(request, absl::Now() + absl::Seconds(5), nullptr);
  } while (!r.ok() && absl::Now() < give_up && (absl::SleepFor(absl::Milliseconds(50)), true));
  ASSERT_TRUE(r.ok()) << r.status();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ListDocs(client).served_by, TransportKind::kAmqp);
  EXPECT_TRUE(host->amqp_connected());
  host->Shutdown(absl::Seconds(2));
}

}  // namespace
}  // namespace filemesh
