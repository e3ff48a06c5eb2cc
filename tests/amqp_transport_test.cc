// AmqpTransport and AmqpServer against a real (private) RabbitMQ node.

#include "rpc/amqp_transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "captured_log.h"
#include "gtest/gtest.h"
#include "loopback_port.h"
#include "rabbitmq/amqp_admin.h"
#include "rabbitmq/broker.h"
#include "rabbitmq/echo_service.h"
#include "rpc/amqp_server.h"
#include "wait_for.h"

namespace filemesh::internal {
namespace {

using filemesh::testing::AmqpAdmin;
using filemesh::testing::EchoService;
using filemesh::testing::ExpectedListResponse;
using filemesh::testing::kListerService;
using filemesh::testing::kListMethod;
using filemesh::testing::ListRequestBytes;
using filemesh::testing::RawMessage;
using filemesh::testing::SharedBroker;
using filemesh::testing::WaitFor;

const auto* const kBroker =
    ::testing::AddGlobalTestEnvironment(new filemesh::testing::SharedBrokerEnvironment);

constexpr absl::Duration kSettle = absl::Seconds(30);  // bound of every wait below

CallOptions Until(absl::Time deadline) {
  CallOptions options;
  options.deadline = deadline;
  return options;
}

class AmqpTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(SharedBroker(), nullptr);
    // Each test has queues of its own.
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("t.") + info->name() + ".";
    queue_ = prefix_ + kListerService;
  }

  FailoverChannelOptions ClientOptions() const {
    FailoverChannelOptions options;
    options.amqp.url = SharedBroker()->url();
    options.amqp.queue_prefix = prefix_;
    options.amqp.heartbeat = absl::Seconds(5);
    options.late_reply_ttl = absl::Minutes(1);
    options.reconnect_backoff_min = absl::Milliseconds(20);
    options.reconnect_backoff_max = absl::Milliseconds(500);
    return options;
  }

  AmqpServerOptions ServerOptions(EchoService& service) const {
    AmqpServerOptions options;
    options.amqp.url = SharedBroker()->url();
    options.amqp.queue_prefix = prefix_;
    options.amqp.heartbeat = absl::Seconds(5);
    options.reconnect_backoff_min = absl::Milliseconds(20);
    options.reconnect_backoff_max = absl::Milliseconds(500);
    options.services = {kListerService};
    options.dispatch = service.dispatcher();
    return options;
  }

  static std::unique_ptr<AmqpTransport> Connect(const FailoverChannelOptions& options) {
    auto client = AmqpTransport::Create(options);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    EXPECT_TRUE(WaitFor([&] { return (*client)->Connected(); }, kSettle));
    return *std::move(client);
  }

  static std::unique_ptr<AmqpServer> Serve(const AmqpServerOptions& options) {
    auto server = AmqpServer::Create(options);
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return nullptr;
    EXPECT_TRUE((*server)->Start().ok());
    EXPECT_TRUE(WaitFor([&] { return (*server)->Connected(); }, kSettle)) << (*server)->LastError();
    return *std::move(server);
  }

  static std::unique_ptr<AmqpAdmin> Admin() {
    std::string error;
    auto admin = AmqpAdmin::Connect(SharedBroker()->url(), &error);
    EXPECT_NE(admin, nullptr) << error;
    return admin;
  }

  static absl::Time In(absl::Duration d) { return absl::Now() + d; }

  std::string prefix_;
  std::string queue_;  // the FileLister queue
};

TEST_F(AmqpTransportTest, RoundTripCarriesTheServiceResponse) {
  EchoService service;
  auto server = Serve(ServerOptions(service));
  auto client = Connect(ClientOptions());
  ASSERT_TRUE(server && client);
  EXPECT_EQ(client->kind(), TransportKind::kAmqp);
  EXPECT_FALSE(client->KnownUnavailable());

  for (const std::string path : {"a/b", "", "caf\xc3\xa9"}) {
    TransportResult result = client->Call(kListMethod, ListRequestBytes(path, 3), In(kSettle));
    ASSERT_TRUE(result.response.ok()) << result.response.status();
    EXPECT_EQ(*result.response, ExpectedListResponse(path, 3));
    EXPECT_TRUE(result.queued_id.empty());
  }
  EXPECT_EQ(service.handled(), 3);
}

TEST_F(AmqpTransportTest, TheServerRunsACallForTheCallersTimeNotTheQueueTtl) {
  EchoService service;
  auto server = Serve(ServerOptions(service));
  FailoverChannelOptions options = ClientOptions();
  options.late_reply_ttl = absl::Minutes(10);  // the request's `expiration`
  auto client = Connect(options);
  ASSERT_TRUE(server && client);
  ASSERT_TRUE(client->Call(kListMethod, ListRequestBytes("a"), In(absl::Seconds(3))).response.ok());
  // A request from a client that sends no run-time header: its expiration.
  auto admin = Admin();
  ASSERT_NE(admin, nullptr);
  const std::string replies = prefix_ + "filemesh.reply.test";
  ASSERT_TRUE(admin->DeclareQueue(replies));
  RawMessage raw;
  raw.content_type = "application/x-protobuf";
  raw.type = kListMethod;
  raw.correlation_id = "c-old-client";
  raw.reply_to = replies;
  raw.body = ListRequestBytes("b");
  raw.expiration = "7000";
  ASSERT_TRUE(admin->Publish(queue_, raw));
  ASSERT_TRUE(WaitFor([&] { return service.budgets().size() == 2; }, kSettle));
  const std::vector<absl::Duration> budgets = service.budgets();
  EXPECT_LE(budgets[0], absl::Seconds(3)) << budgets[0];
  EXPECT_GT(budgets[0], absl::Seconds(2)) << budgets[0];
  EXPECT_LE(budgets[1], absl::Seconds(7)) << budgets[1];
  EXPECT_GT(budgets[1], absl::Seconds(6)) << budgets[1];
}

TEST_F(AmqpTransportTest, MessagesAboveTheLimitAreResourceExhausted) {
  EchoService service;
  auto server = Serve(ServerOptions(service));
  FailoverChannelOptions options = ClientOptions();
  options.max_message_bytes = 64;
  auto client = Connect(options);
  ASSERT_TRUE(server && client);
  // A request too large is refused before it is sent.
  TransportResult result =
      client->Call(kListMethod, ListRequestBytes(std::string(100, 'p')), In(kSettle));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(service.handled(), 0);
  // A reply too large (the echo repeats the path) is refused on arrival.
  result = client->Call(kListMethod, ListRequestBytes(std::string(30, 'p')), In(kSettle));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kResourceExhausted)
      << result.response.status();
  EXPECT_EQ(service.handled(), 1);
  // Small ones still pass.
  EXPECT_TRUE(client->Call(kListMethod, ListRequestBytes("s"), In(kSettle)).response.ok());
}

// A request above the server's limit, published by anyone: its body is
// dropped as it arrives (never held, whatever size its header declares), the
// caller is answered RESOURCE_EXHAUSTED, the request dead-lettered, no
// handler runs, and the server goes on serving.
TEST_F(AmqpTransportTest, ARequestAboveTheServersLimitIsRefusedWithoutBeingHeld) {
  EchoService service;
  AmqpServerOptions server_options = ServerOptions(service);
  server_options.max_request_bytes = 64 * 1024;
  auto server = Serve(server_options);
  auto admin = Admin();
  ASSERT_TRUE(server && admin);
  const std::string replies = prefix_ + "filemesh.reply.test";
  ASSERT_TRUE(admin->DeclareQueue(replies));
  RawMessage big;
  big.content_type = "application/x-protobuf";
  big.type = kListMethod;
  big.correlation_id = "c-big";
  big.reply_to = replies;
  big.body = ListRequestBytes(std::string(2 * 1024 * 1024, 'p'));
  ASSERT_TRUE(admin->Publish(queue_, big));

  std::vector<RawMessage> answers = admin->Take(replies, 1, kSettle);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].correlation_id, "c-big");
  EXPECT_EQ(answers[0].int_headers["grpc-status"], 8);  // RESOURCE_EXHAUSTED
  EXPECT_NE(answers[0].string_headers["grpc-message"].find("(max_request_bytes)"),
            std::string::npos)
      << answers[0].string_headers["grpc-message"];
  std::vector<RawMessage> dead = admin->Take(queue_ + ".dlq", 1, kSettle);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].body.size(), big.body.size());  // the broker keeps it whole
  EXPECT_EQ(service.handled(), 0);

  auto client = Connect(ClientOptions());
  ASSERT_TRUE(client);
  EXPECT_TRUE(client->Call(kListMethod, ListRequestBytes("ok"), In(kSettle)).response.ok());
}

TEST_F(AmqpTransportTest, AFullQueueRefusesACallAtOnce) {
  // No server: requests wait in the queue, which holds two.
  FailoverChannelOptions options = ClientOptions();
  options.amqp.queue_limits.max_length = 2;
  auto client = Connect(options);
  ASSERT_TRUE(client);
  for (const char* path : {"one", "two"}) {
    TransportResult queued =
        client->Call(kListMethod, ListRequestBytes(path), In(absl::Milliseconds(300)));
    EXPECT_EQ(queued.response.status().code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_FALSE(queued.queued_id.empty()) << "the broker took it";
  }
  // The third is refused by the broker (reject-publish): a clear error long
  // before its 30 s deadline, not a queued call.
  TransportResult refused = client->Call(kListMethod, ListRequestBytes("three"), In(kSettle));
  EXPECT_EQ(refused.response.status().code(), absl::StatusCode::kResourceExhausted)
      << refused.response.status();
  EXPECT_NE(std::string(refused.response.status().message()).find("full"), std::string::npos);
  EXPECT_TRUE(refused.queued_id.empty());
  auto admin = Admin();
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->Stats(queue_).messages, 2);
}

TEST_F(AmqpTransportTest, AFullQuorumQueueRefusesACallAtOnce) {
  // A quorum queue's nack is ambiguous (full, or a channel that cannot reach
  // the queue's leader); a full one still fails the call at once.
  FailoverChannelOptions options = ClientOptions();
  options.amqp.quorum_queues = true;
  options.amqp.queue_limits.max_length = 2;
  auto client = Connect(options);
  ASSERT_TRUE(client);
  for (const char* path : {"one", "two"}) {
    TransportResult queued =
        client->Call(kListMethod, ListRequestBytes(path), In(absl::Milliseconds(300)));
    EXPECT_FALSE(queued.queued_id.empty()) << queued.response.status();
  }
  // A quorum queue's limit is not exact: it refuses once it is past it, so
  // it may take one more first.
  TransportResult refused;
  int accepted_past = 0;
  for (; accepted_past < 3; ++accepted_past) {
    const absl::Time start = absl::Now();
    refused = client->Call(kListMethod, ListRequestBytes("more"), In(absl::Seconds(2)));
    if (refused.queued_id.empty()) {
      EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "refused, not retried to the deadline";
      break;
    }
  }
  EXPECT_LE(accepted_past, 1);
  EXPECT_EQ(refused.response.status().code(), absl::StatusCode::kResourceExhausted)
      << refused.response.status();
  EXPECT_NE(std::string(refused.response.status().message()).find("full"), std::string::npos);
}

TEST_F(AmqpTransportTest, AReplyQueueThatRefusesEverythingDoesNotPinTheServer) {
  // Quorum queues: the server keeps each reply until confirmed, at most
  // prefetch x services (here 1), and publishes a nacked one again. A reply
  // queue that takes nothing must not hold that slot for ever.
  CapturedLog log;
  EchoService service;
  AmqpServerOptions server_options = ServerOptions(service);
  server_options.amqp.quorum_queues = true;
  server_options.prefetch = 1;
  auto server = Serve(server_options);
  ASSERT_TRUE(server);
  auto admin = Admin();
  ASSERT_NE(admin, nullptr);
  const std::string refusing = prefix_ + "filemesh.reply.refusing";
  ASSERT_TRUE(admin->DeclareRefusingQuorumQueue(refusing));
  // A quorum queue refuses once it is past its limit: one message in it.
  RawMessage filler;
  filler.body = "filler";
  ASSERT_TRUE(admin->Publish(refusing, filler));
  RawMessage raw;
  raw.content_type = "application/x-protobuf";
  raw.type = kListMethod;
  raw.correlation_id = "c-refused";
  raw.reply_to = refusing;
  raw.body = ListRequestBytes("refused");
  ASSERT_TRUE(admin->Publish(queue_, raw));
  ASSERT_TRUE(WaitFor([&] { return service.handled() == 1; }, kSettle));

  // A caller behind it is answered once the refused reply is dropped.
  FailoverChannelOptions client_options = ClientOptions();
  client_options.amqp.quorum_queues = true;
  auto client = Connect(client_options);
  ASSERT_TRUE(client);
  TransportResult after = client->Call(kListMethod, ListRequestBytes("after"), In(kSettle));
  ASSERT_TRUE(after.response.ok()) << after.response.status();
  EXPECT_EQ(*after.response, ExpectedListResponse("after"));
  const std::vector<std::string> dropped = log.Events("amqp_reply_dropped");
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_NE(dropped[0].find("queue=" + refusing), std::string::npos) << dropped[0];
  EXPECT_NE(dropped[0].find("attempts=8"), std::string::npos) << dropped[0];
  EXPECT_EQ(admin->Stats(refusing).messages, 1) << "the filler only";
}

TEST_F(AmqpTransportTest, ABrokerListGoesPastANodeThatIsDown) {
  EchoService service;
  auto server = Serve(ServerOptions(service));
  ASSERT_TRUE(server);
  // The first broker of the list does not answer; the second serves.
  FailoverChannelOptions options = ClientOptions();
  const int dead = filemesh::testing::FreeLoopbackPort();
  options.amqp.url =
      "amqp://guest:guest@127.0.0.1:" + std::to_string(dead) + "/," + SharedBroker()->url();
  options.amqp.quorum_queues = false;  // the server's queues are classic
  auto client = AmqpTransport::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();
  // A call made before any broker took the connection waits for one.
  TransportResult result = (*client)->Call(kListMethod, ListRequestBytes("listed"), In(kSettle));
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(*result.response, ExpectedListResponse("listed"));
  EXPECT_TRUE((*client)->Connected());
}

TEST_F(AmqpTransportTest, DeadLetterQueuesAreBoundedInLengthAndTime) {
  FailoverChannelOptions options = ClientOptions();
  options.amqp.queue_limits.dead_letter_max_length = 2;
  options.amqp.queue_limits.dead_letter_ttl = absl::Milliseconds(300);
  auto client = Connect(options);
  ASSERT_TRUE(client);
  // A call declares the queues (nobody serves it).
  (void)client->Call(kListMethod, ListRequestBytes("x"), In(absl::Milliseconds(100)));
  auto admin = Admin();
  ASSERT_NE(admin, nullptr);
  const std::string dlq = queue_ + ".dlq";
  ASSERT_GE(admin->Stats(dlq).messages, 0) << "no dead-letter queue";
  RawMessage dead;
  dead.body = "dead";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(admin->Publish(dlq, dead));
  // Two at most (the oldest goes), and none once the TTL has passed.
  EXPECT_LE(admin->Stats(dlq).messages, 2);
  EXPECT_TRUE(WaitFor([&] { return admin->Stats(dlq).messages == 0; }, kSettle));
}

TEST_F(AmqpTransportTest, ARequestWhoseServersKeepDyingIsDeadLetteredAfterMaxDeliveries) {
  FailoverChannelOptions client_options = ClientOptions();
  client_options.amqp.queue_limits.max_deliveries = 3;
  auto client = Connect(client_options);
  ASSERT_TRUE(client);
  std::atomic<bool> answered{false};
  TransportResult result;
  CallOptions call;
  call.deadline = In(absl::Seconds(120));
  call.accept_deadline = call.deadline;
  client->CallAsync(kListMethod, ListRequestBytes("hold"), call, [&](TransportResult r) {
    result = std::move(r);
    answered = true;
  });
  // Three servers in turn take the request and go away without answering
  // (as a crash would: the connection closes with the delivery unacked).
  std::vector<std::unique_ptr<EchoService>> services;
  for (int run = 0; run < 3; ++run) {
    services.push_back(std::make_unique<EchoService>());
    AmqpServerOptions options = ServerOptions(*services.back());
    options.amqp.queue_limits.max_deliveries = 3;
    auto server = Serve(options);
    ASSERT_TRUE(server);
    ASSERT_TRUE(services.back()->WaitUntilHeld(1, kSettle)) << "run " << run;
    server->Shutdown(absl::ZeroDuration());
  }
  EXPECT_FALSE(answered.load());
  // The fourth delivery is not run: the caller hears why, the request is in
  // the dead-letter queue.
  EchoService last;
  AmqpServerOptions options = ServerOptions(last);
  options.amqp.queue_limits.max_deliveries = 3;
  auto server = Serve(options);
  ASSERT_TRUE(server);
  ASSERT_TRUE(WaitFor([&] { return answered.load(); }, kSettle));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kAborted)
      << result.response.status();
  EXPECT_NE(std::string(result.response.status().message()).find("3 times"), std::string::npos)
      << result.response.status();
  EXPECT_EQ(last.handled(), 0);
  auto admin = Admin();
  ASSERT_NE(admin, nullptr);
  std::vector<RawMessage> dead = admin->Take(queue_ + ".dlq", 1, kSettle);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].body, ListRequestBytes("hold"));
  // The server still serves.
  EXPECT_TRUE(client->Call(kListMethod, ListRequestBytes("fine"), In(kSettle)).response.ok());
  for (auto& s : services) s->ReleaseHeld();
}

TEST_F(AmqpTransportTest, ServiceErrorCrossesWithItsCodeAndMessage) {
  EchoService service;
  auto server = Serve(ServerOptions(service));
  auto client = Connect(ClientOptions());
  ASSERT_TRUE(server && client);

  TransportResult result = client->Call(kListMethod, ListRequestBytes("missing"), In(kSettle));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.response.status().message(), "no such directory: missing");

  // An unparseable body is the handler's business: InvalidArgument from it.
  result = client->Call(kListMethod, std::string("\xff\xff\xff", 3), In(kSettle));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kInvalidArgument)
      << result.response.status();
}

TEST_F(AmqpTransportTest, UnknownMethodIsUnimplemented) {
  EchoService service;
  auto server = Serve(ServerOptions(service));
  auto client = Connect(ClientOptions());
  ASSERT_TRUE(server && client);

  TransportResult result =
      client->Call("/filemesh.v1.FileLister/Nope", ListRequestBytes("x"), In(kSettle));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kUnimplemented)
      << result.response.status();
  // The server still serves afterwards.
  result = client->Call(kListMethod, ListRequestBytes("x"), In(kSettle));
  EXPECT_TRUE(result.response.ok()) << result.response.status();
}

TEST_F(AmqpTransportTest, MalformedMethodNameIsInvalidArgument) {
  auto client = Connect(ClientOptions());
  ASSERT_TRUE(client);
  for (const std::string method : {"", "/", "FileLister/List", "/filemesh.v1.FileLister",
                                   "/filemesh.v1.FileLister/", "//List"}) {
    SCOPED_TRACE(method);
    TransportResult result = client->Call(method, "", In(kSettle));
    EXPECT_EQ(result.response.status().code(), absl::StatusCode::kInvalidArgument);
  }
  // Too long for an AMQP short string: refused before it reaches the wire.
  TransportResult result =
      client->Call("/filemesh.v1.FileLister/" + std::string(300, 'x'), "", In(kSettle));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kInvalidArgument);
  result = client->Call("/" + std::string(300, 'x') + "/List", "", In(kSettle));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(client->Connected());
}

TEST_F(AmqpTransportTest, MalformedEnvelopesAreAnsweredAndDeadLettered) {
  EchoService service;
  auto server = Serve(ServerOptions(service));
  auto admin = Admin();
  ASSERT_TRUE(server && admin);
  const std::string replies = prefix_ + "filemesh.reply.test";
  ASSERT_TRUE(admin->DeclareQueue(replies));

  RawMessage wrong_type;  // not protobuf: answered INVALID_ARGUMENT, dead-lettered
  wrong_type.content_type = "text/plain";
  wrong_type.type = kListMethod;
  wrong_type.correlation_id = "c-wrong-type";
  wrong_type.reply_to = replies;
  wrong_type.body = "garbage";
  RawMessage no_method = wrong_type;  // no `type`: same
  no_method.content_type = "application/x-protobuf";
  no_method.type.clear();
  no_method.correlation_id = "c-no-method";
  no_method.body = "no method";
  RawMessage no_reply_to;  // nobody to answer: dead-lettered without a reply
  no_reply_to.content_type = "application/x-protobuf";
  no_reply_to.type = kListMethod;
  no_reply_to.correlation_id = "c-no-reply-to";
  no_reply_to.body = ListRequestBytes("unanswerable");
  RawMessage other_service = no_method;  // a method of another service: UNIMPLEMENTED, acked
  other_service.type = "/filemesh.v1.FileSearcher/Search";
  other_service.correlation_id = "c-other-service";
  other_service.body = "other";
  for (const RawMessage* m : {&wrong_type, &no_method, &no_reply_to, &other_service}) {
    ASSERT_TRUE(admin->Publish(queue_, *m));
  }

  std::vector<RawMessage> answers = admin->Take(replies, 3, kSettle);
  ASSERT_EQ(answers.size(), 3u);
  std::set<std::string> seen;
  for (RawMessage& a : answers) {
    SCOPED_TRACE(a.correlation_id);
    seen.insert(a.correlation_id);
    const int64_t want = a.correlation_id == "c-other-service" ? 12 : 3;
    EXPECT_EQ(a.int_headers["grpc-status"], want);
    EXPECT_FALSE(a.string_headers["grpc-message"].empty());
    EXPECT_EQ(a.content_type, "application/x-protobuf");
    EXPECT_TRUE(a.body.empty());
  }
  EXPECT_EQ(seen, (std::set<std::string>{"c-wrong-type", "c-no-method", "c-other-service"}));

  std::vector<RawMessage> dead = admin->Take(queue_ + ".dlq", 3, kSettle);
  ASSERT_EQ(dead.size(), 3u);
  std::set<std::string> bodies;
  for (RawMessage& d : dead) {
    bodies.insert(d.body);
    EXPECT_EQ(d.string_headers["x-first-death-reason"], "rejected");
  }
  EXPECT_EQ(bodies, (std::set<std::string>{"garbage", "no method", no_reply_to.body}));
  // Nothing of it stayed behind, and nothing ran a handler.
  EXPECT_TRUE(WaitFor([&] { return admin->Stats(queue_).messages == 0; }, kSettle));
  EXPECT_EQ(service.handled(), 0);

  // The server is still serving.
  auto client = Connect(ClientOptions());
  ASSERT_TRUE(client);
  TransportResult result = client->Call(kListMethod, ListRequestBytes("ok"), In(kSettle));
  EXPECT_TRUE(result.response.ok()) << result.response.status();
}

TEST_F(AmqpTransportTest, ExpiredRequestsAreDeadLettered) {
  FailoverChannelOptions options = ClientOptions();
  options.late_reply_ttl = absl::Milliseconds(300);
  auto client = Connect(options);
  auto admin = Admin();
  ASSERT_TRUE(client && admin);

  const std::string request = ListRequestBytes("too late");
  TransportResult result = client->Call(kListMethod, request, In(absl::Seconds(2)));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(result.queued_id.empty());

  std::vector<RawMessage> dead = admin->Take(queue_ + ".dlq", 1, kSettle);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].body, request);
  EXPECT_EQ(dead[0].string_headers["x-first-death-reason"], "expired");
  EXPECT_EQ(dead[0].type, kListMethod);
  EXPECT_EQ(dead[0].correlation_id, result.queued_id);
}

TEST_F(AmqpTransportTest, ReturnedRequestFailsFastWithUnavailable) {
  auto client = Connect(ClientOptions());
  auto admin = Admin();
  ASSERT_TRUE(client && admin);
  // Nobody serves the queue; the first call declares it.
  TransportResult result =
      client->Call(kListMethod, ListRequestBytes("first"), In(absl::Milliseconds(500)));
  ASSERT_FALSE(result.queued_id.empty()) << result.response.status();

  // Someone deletes it behind the client's back: the next publish is returned.
  ASSERT_TRUE(admin->DeleteQueue(queue_));
  const absl::Time start = absl::Now();
  result = client->Call(kListMethod, ListRequestBytes("second"), In(kSettle));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kUnavailable)
      << result.response.status();
  EXPECT_NE(result.response.status().message().find("NO_ROUTE"), absl::string_view::npos)
      << result.response.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(result.queued_id.empty());

  // The client declares the queue again for the call after.
  result = client->Call(kListMethod, ListRequestBytes("third"), In(absl::Milliseconds(500)));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(result.queued_id.empty());
  EXPECT_EQ(admin->Stats(queue_).messages, 1);
}

TEST_F(AmqpTransportTest, QueuedCallIsServedWhenAServerComes) {
  auto client = Connect(ClientOptions());
  ASSERT_TRUE(client);
  TransportResult result =
      client->Call(kListMethod, ListRequestBytes("later", 9), In(absl::Milliseconds(500)));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_FALSE(result.queued_id.empty());
  EXPECT_EQ(client->TakeLateReply(result.queued_id).state, LateReply::State::kPending);
  EXPECT_EQ(client->TakeLateReply("no-such-id").state, LateReply::State::kUnknown);

  EchoService service;
  auto server = Serve(ServerOptions(service));
  ASSERT_TRUE(server);
  LateReply late;
  EXPECT_TRUE(WaitFor(
      [&] {
        late = client->TakeLateReply(result.queued_id);
        return late.state != LateReply::State::kPending;
      },
      kSettle));
  ASSERT_EQ(late.state, LateReply::State::kDone);
  ASSERT_TRUE(late.response.ok()) << late.response.status();
  EXPECT_EQ(*late.response, ExpectedListResponse("later", 9));
  // Taken: it is gone.
  EXPECT_EQ(client->TakeLateReply(result.queued_id).state, LateReply::State::kUnknown);
}

// The listener hears a late reply once its caller's callback has returned
// (so a gateway has recorded the operation first), and a reply it leaves
// stays for TakeLateReply.
TEST_F(AmqpTransportTest, TheListenerHearsALateReplyOnceItsCallerWasAnswered) {
  auto client = Connect(ClientOptions());
  ASSERT_TRUE(client);
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> heard;  // id, response
  std::string left;                                        // the id the listener leaves
  client->SetLateReplyListener(
      [&](const std::string& id, const absl::StatusOr<std::string>& response) {
        std::lock_guard<std::mutex> lock(mu);
        heard.emplace_back(id, response.ok() ? *response : response.status().ToString());
        return id != left;
      });
  const auto heard_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return heard.size();
  };
  // A caller still in its callback when its reply comes.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto unblock = absl::MakeCleanup([&] {
    if (released.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      release.set_value();
    }
  });
  std::promise<std::string> held_id;
  client->CallAsync(kListMethod, ListRequestBytes("held", 1), Until(In(absl::Milliseconds(300))),
                    [&](TransportResult r) {
                      held_id.set_value(r.queued_id);
                      released.wait();
                    });
  const std::string held = held_id.get_future().get();
  ASSERT_FALSE(held.empty());
  TransportResult second =
      client->Call(kListMethod, ListRequestBytes("left", 2), In(absl::Milliseconds(300)));
  ASSERT_FALSE(second.queued_id.empty()) << second.response.status();
  {
    std::lock_guard<std::mutex> lock(mu);
    left = second.queued_id;
  }

  EchoService service;
  auto server = Serve(ServerOptions(service));
  ASSERT_TRUE(server);
  ASSERT_TRUE(WaitFor([&] { return heard_count() == 1; }, kSettle));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(heard[0].first, second.queued_id);
  }
  // Left by the listener: TakeLateReply has it.
  LateReply late = client->TakeLateReply(second.queued_id);
  ASSERT_EQ(late.state, LateReply::State::kDone);
  EXPECT_EQ(late.response.value_or(""), ExpectedListResponse("left", 2));
  // The held caller's call was served too, but its reply waits for the
  // callback to return.
  ASSERT_TRUE(WaitFor([&] { return service.handled() == 2; }, kSettle));
  EXPECT_EQ(heard_count(), 1u);
  release.set_value();
  ASSERT_TRUE(WaitFor([&] { return heard_count() == 2; }, kSettle));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(heard[1].first, held);
    EXPECT_EQ(heard[1].second, ExpectedListResponse("held", 1));
  }
  // Taken by the listener: gone from the transport.
  EXPECT_EQ(client->TakeLateReply(held).state, LateReply::State::kUnknown);
  client->SetLateReplyListener(nullptr);
}

// share_orphan_replies: a reply that comes after its client died moves from
// the client's reply queue to the orphan queue, and another client's
// listener gets it.
class AmqpOrphanReplyTest : public AmqpTransportTest {
 protected:
  void ExpectTheOrphanReachesAnotherClient(bool quorum);
};

void AmqpOrphanReplyTest::ExpectTheOrphanReachesAnotherClient(bool quorum) {
  FailoverChannelOptions options = ClientOptions();
  options.amqp.quorum_queues = quorum;
  options.share_orphan_replies = true;
  options.orphan_reply_after = absl::Milliseconds(200);
  std::string queued;
  {
    auto dying = Connect(options);
    ASSERT_TRUE(dying);
    TransportResult result =
        dying->Call(kListMethod, ListRequestBytes("orphan", 4), In(absl::Seconds(1)));
    queued = result.queued_id;
    ASSERT_FALSE(queued.empty()) << result.response.status();
  }  // gone: nobody reads its reply queue now
  auto survivor = Connect(options);
  ASSERT_TRUE(survivor);
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> heard;
  survivor->SetLateReplyListener(
      [&](const std::string& id, const absl::StatusOr<std::string>& response) {
        std::lock_guard<std::mutex> lock(mu);
        heard.emplace_back(id, response.ok() ? *response : response.status().ToString());
        return true;
      });
  EchoService service;
  AmqpServerOptions server_options = ServerOptions(service);
  server_options.amqp.quorum_queues = quorum;
  auto server = Serve(server_options);
  ASSERT_TRUE(server);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return !heard.empty();
      },
      kSettle));
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(heard.size(), 1u);
    EXPECT_EQ(heard[0].first, queued);
    EXPECT_EQ(heard[0].second, ExpectedListResponse("orphan", 4));
  }
  EXPECT_EQ(survivor->orphan_replies(), 1u);
  // Its own calls still come back to it, not to the listener.
  TransportResult own = survivor->Call(kListMethod, ListRequestBytes("own", 1), In(kSettle));
  ASSERT_TRUE(own.response.ok()) << own.response.status();
  EXPECT_EQ(*own.response, ExpectedListResponse("own", 1));
  survivor->SetLateReplyListener(nullptr);
}

TEST_F(AmqpOrphanReplyTest, AReplyWhoseClientDiedGoesToAnotherClientsListener) {
  ExpectTheOrphanReachesAnotherClient(/*quorum=*/false);
}

// The same through quorum queues (dead-lettered at-least-once).
TEST_F(AmqpOrphanReplyTest, AReplyWhoseClientDiedGoesToAnotherClientsListenerOnQuorumQueues) {
  ExpectTheOrphanReachesAnotherClient(/*quorum=*/true);
}

TEST_F(AmqpTransportTest, LateRepliesAreBoundedByCapacity) {
  FailoverChannelOptions options = ClientOptions();
  options.late_reply_capacity = 2;
  auto client = Connect(options);
  ASSERT_TRUE(client);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    TransportResult result =
        client->Call(kListMethod, ListRequestBytes(std::to_string(i)), In(absl::Seconds(1)));
    // A second: the broker must confirm each call within it, even on a
    // loaded machine (no server consumes, so each still ends queued).
    ASSERT_FALSE(result.queued_id.empty()) << result.response.status();
    ids.push_back(result.queued_id);
  }
  EXPECT_EQ(client->TakeLateReply(ids[0]).state, LateReply::State::kUnknown);  // the oldest
  EXPECT_EQ(client->TakeLateReply(ids[1]).state, LateReply::State::kPending);
  EXPECT_EQ(client->TakeLateReply(ids[2]).state, LateReply::State::kPending);
}

// Late replies are bounded by the bytes of their answers too: past the
// bound the oldest answer goes first, and the drop is counted.
TEST_F(AmqpTransportTest, LateRepliesAreBoundedByBytes) {
  FailoverChannelOptions options = ClientOptions();
  // An echo of a 300-byte path is about 920 bytes (the path three times):
  // two fit, not three.
  options.late_reply_max_bytes = 2000;
  auto client = Connect(options);
  ASSERT_TRUE(client);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    TransportResult result =
        client->Call(kListMethod, ListRequestBytes(std::string(300, static_cast<char>('a' + i))),
                     In(absl::Seconds(1)));
    ASSERT_FALSE(result.queued_id.empty()) << result.response.status();
    ids.push_back(result.queued_id);
  }
  EXPECT_EQ(client->late_replies_dropped(), 0u);
  // One handler thread: the three are answered, and their replies arrive, in
  // the order they were queued (with more, the oldest reply need not be the
  // first to arrive).
  EchoService service(1);
  auto server = Serve(ServerOptions(service));
  ASSERT_TRUE(server);
  ASSERT_TRUE(WaitFor([&] { return service.handled() == 3 && client->late_replies_dropped() == 1; },
                      kSettle))
      << "dropped " << client->late_replies_dropped();
  // The third answer's arrival dropped the first; the second came before it.
  EXPECT_EQ(client->TakeLateReply(ids[0]).state, LateReply::State::kUnknown);
  EXPECT_EQ(client->TakeLateReply(ids[1]).state, LateReply::State::kDone);
  EXPECT_EQ(client->TakeLateReply(ids[2]).state, LateReply::State::kDone);
  EXPECT_EQ(client->late_replies_dropped(), 1u);
}

TEST_F(AmqpTransportTest, ConcurrentCallersAllGetTheirOwnAnswers) {
  EchoService service(4);
  auto server = Serve(ServerOptions(service));
  auto client = Connect(ClientOptions());
  ASSERT_TRUE(server && client);

  constexpr int kThreads = 32;
  constexpr int kCallsPerThread = 200;
  std::atomic<int> good{0};
  std::atomic<int> bad{0};
  std::mutex mu;
  std::string first_bad;
  std::vector<double> latency_ms;
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        const std::string path = "t" + std::to_string(t) + "/" + std::to_string(i);
        const uint32_t size = static_cast<uint32_t>(t * 1000 + i);
        const absl::Time t0 = absl::Now();
        TransportResult r = client->Call(kListMethod, ListRequestBytes(path, size), In(kSettle));
        {
          std::lock_guard<std::mutex> lock(mu);
          latency_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
        }
        if (r.response.ok() && *r.response == ExpectedListResponse(path, size)) {
          ++good;
          continue;
        }
        ++bad;
        std::lock_guard<std::mutex> lock(mu);
        if (first_bad.empty()) {
          first_bad = r.response.ok() ? "wrong answer for " + path
                                      : std::string(r.response.status().ToString());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::sort(latency_ms.begin(), latency_ms.end());
  EXPECT_EQ(bad.load(), 0) << first_bad;
  EXPECT_EQ(good.load(), kThreads * kCallsPerThread);
  EXPECT_EQ(service.handled(), kThreads * kCallsPerThread);
  // For information (the benchmark proper is elsewhere): sanitizers and a
  // busy machine make this vary too much to assert on.
  std::printf(
      "[   INFO   ] %d calls from %d threads in %.2f s: %.0f calls/s; latency p50 %.1f "
      "ms, p99 %.1f ms, max %.1f ms\n",
      kThreads * kCallsPerThread, kThreads, seconds, kThreads * kCallsPerThread / seconds,
      latency_ms[latency_ms.size() / 2], latency_ms[latency_ms.size() * 99 / 100],
      latency_ms.back());
}

TEST_F(AmqpTransportTest, IdleConnectionsSurviveOnHeartbeats) {
  EchoService service;
  AmqpServerOptions server_options = ServerOptions(service);
  server_options.amqp.heartbeat = absl::Seconds(1);
  FailoverChannelOptions client_options = ClientOptions();
  client_options.amqp.heartbeat = absl::Seconds(1);
  auto server = Serve(server_options);
  auto client = Connect(client_options);
  ASSERT_TRUE(server && client);
  // The broker drops a peer silent for two heartbeats; stay idle for four.
  EXPECT_FALSE(
      WaitFor([&] { return !client->Connected() || !server->Connected(); }, absl::Seconds(4)));
  TransportResult result = client->Call(kListMethod, ListRequestBytes("awake"), In(kSettle));
  EXPECT_TRUE(result.response.ok()) << result.response.status();
}

TEST_F(AmqpTransportTest, ServerShutdownFinishesRequestsInFlight) {
  EchoService service;
  auto server = Serve(ServerOptions(service));
  auto client = Connect(ClientOptions());
  auto admin = Admin();
  ASSERT_TRUE(server && client && admin);

  TransportResult held;
  std::thread caller(
      [&] { held = client->Call(kListMethod, ListRequestBytes("hold"), In(kSettle)); });
  ASSERT_TRUE(service.WaitUntilHeld(1, kSettle));
  std::thread stopper([&] { server->Shutdown(kSettle); });
  // Shutdown first stops consuming, then waits for the held request.
  EXPECT_TRUE(WaitFor([&] { return admin->Stats(queue_).consumers == 0; }, kSettle));
  service.ReleaseHeld();
  stopper.join();
  caller.join();
  ASSERT_TRUE(held.response.ok()) << held.response.status();
  EXPECT_EQ(*held.response, ExpectedListResponse("hold"));
  // It was acked, not handed back to the queue.
  EXPECT_EQ(admin->Stats(queue_).messages, 0);
  // A request now waits for another server.
  TransportResult queued =
      client->Call(kListMethod, ListRequestBytes("next"), In(absl::Milliseconds(300)));
  EXPECT_FALSE(queued.queued_id.empty()) << queued.response.status();
}

TEST_F(AmqpTransportTest, QuorumQueuesWork) {
  EchoService service;
  AmqpServerOptions server_options = ServerOptions(service);
  server_options.amqp.quorum_queues = true;
  FailoverChannelOptions client_options = ClientOptions();
  client_options.amqp.quorum_queues = true;
  auto server = Serve(server_options);
  auto client = Connect(client_options);
  ASSERT_TRUE(server && client);
  TransportResult result = client->Call(kListMethod, ListRequestBytes("q"), In(kSettle));
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(*result.response, ExpectedListResponse("q"));
}

TEST_F(AmqpTransportTest, MismatchedQueueTypeIsReportedNotHung) {
  // A classic queue exists; a quorum-configured client cannot declare it.
  auto classic = Connect(ClientOptions());
  ASSERT_TRUE(classic);
  classic->Call(kListMethod, ListRequestBytes("x"), In(absl::Milliseconds(300)));
  FailoverChannelOptions options = ClientOptions();
  options.amqp.quorum_queues = true;
  auto quorum = Connect(options);
  ASSERT_TRUE(quorum);
  TransportResult result = quorum->Call(kListMethod, ListRequestBytes("y"), In(kSettle));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(result.response.status().message().find("PRECONDITION_FAILED"), absl::string_view::npos)
      << result.response.status();
  EXPECT_TRUE(quorum->Connected());  // only the declaration failed
}

// Replies are read and callbacks run on the transport's callback threads,
// not on the connection's one I/O thread: a callback that takes its time
// (a client parsing 16 MiB, the gateway writing JSON) must not stop other
// replies from arriving. Here the first callback waits until the second has
// run; were callbacks on the I/O thread, the second reply could not be read.
TEST_F(AmqpTransportTest, ASlowCallbackDoesNotStopOtherReplies) {
  EchoService service;
  auto server = Serve(ServerOptions(service));
  FailoverChannelOptions options = ClientOptions();
  options.callback_threads = 2;
  auto client = Connect(options);
  ASSERT_TRUE(server && client);

  std::promise<void> second_ran;
  std::shared_future<void> second = second_ran.get_future().share();
  std::promise<absl::Status> first_done;
  std::promise<void> first_started;
  client->CallAsync(
      kListMethod, ListRequestBytes("first"), Until(In(kSettle)), [&](TransportResult result) {
        first_started.set_value();
        // Bounded: on failure the test ends instead of hanging.
        const bool ok = second.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
        first_done.set_value(ok ? result.response.status()
                                : absl::DeadlineExceededError("second never ran"));
      });
  ASSERT_EQ(first_started.get_future().wait_for(std::chrono::seconds(30)),
            std::future_status::ready);
  // The first callback now holds a callback thread (and, before this
  // change, the I/O thread).
  TransportResult result = client->Call(kListMethod, ListRequestBytes("second"), In(kSettle));
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(*result.response, ExpectedListResponse("second"));
  second_ran.set_value();
  EXPECT_TRUE(first_done.get_future().get().ok());
}

// A broker under a resource alarm blocks publishing connections
// (connection.blocked): calls then fail at once with its reason instead of
// waiting for their deadline, the transport says it is unavailable (so a
// FailoverChannel knows), and all is well again once the broker unblocks.
// A node of its own: the alarm must not reach other tests.
TEST_F(AmqpTransportTest, ABlockedBrokerFailsCallsAtOnceUntilItUnblocks) {
  std::string error;
  std::unique_ptr<filemesh::testing::RabbitNode> node =
      filemesh::testing::RabbitNode::Start(&error);
  ASSERT_NE(node, nullptr) << error;
  EchoService service;
  AmqpServerOptions server_options = ServerOptions(service);
  server_options.amqp.url = node->url();
  auto server = Serve(server_options);
  FailoverChannelOptions options = ClientOptions();
  options.amqp.url = node->url();
  auto client = Connect(options);
  ASSERT_TRUE(server && client);
  ASSERT_TRUE(client->Call(kListMethod, ListRequestBytes("before"), In(kSettle)).response.ok());

  // A high watermark of 0 sets the memory alarm at once.
  ASSERT_TRUE(node->Ctl("set_vm_memory_high_watermark 0"));
  // The broker blocks a connection when it next publishes: the call that
  // meets the block fails with Unavailable (not DeadlineExceeded a minute
  // later), naming it.
  absl::Status blocked;
  ASSERT_TRUE(WaitFor(
      [&] {
        blocked = client->Call(kListMethod, ListRequestBytes("during"), In(absl::Minutes(1)))
                      .response.status();
        return !blocked.ok();
      },
      kSettle));
  EXPECT_EQ(blocked.code(), absl::StatusCode::kUnavailable) << blocked;
  EXPECT_NE(blocked.message().find("blocked publishing"), absl::string_view::npos) << blocked;
  EXPECT_NE(blocked.message().find("low on memory"), absl::string_view::npos) << blocked;
  EXPECT_TRUE(client->KnownUnavailable());
  EXPECT_TRUE(client->Connected());  // blocked, not down
  // Later calls do not reach the connection at all.
  const absl::Status again =
      client->Call(kListMethod, ListRequestBytes("again"), In(absl::Minutes(1))).response.status();
  EXPECT_EQ(again.code(), absl::StatusCode::kUnavailable) << again;
  EXPECT_NE(again.message().find("blocked publishing"), absl::string_view::npos) << again;

  ASSERT_TRUE(node->Ctl("set_vm_memory_high_watermark 0.4"));
  ASSERT_TRUE(WaitFor([&] { return !client->KnownUnavailable(); }, kSettle));
  TransportResult after = client->Call(kListMethod, ListRequestBytes("after"), In(kSettle));
  ASSERT_TRUE(after.response.ok()) << after.response.status();
  EXPECT_EQ(*after.response, ExpectedListResponse("after"));
  server.reset();
  client.reset();
}

// A loopback port (below the ephemeral range) that takes TCP connections
// (the kernel's backlog) and never says a word: an AMQP handshake to it waits
// for its connect timeout.
class SilentListener {
 public:
  SilentListener() : fd_(filemesh::testing::BindLowLoopbackPort(&port_)) {
    if (listen(fd_, 16) != 0) ADD_FAILURE() << "cannot listen on 127.0.0.1:" << port_;
  }
  ~SilentListener() { close(fd_); }
  int port() const { return port_; }

 private:
  int port_ = 0;
  const int fd_;
};

// Calls wait in the outbox until the first connection attempt has ended (a
// broker that takes a while to answer). The outbox is bounded in calls and
// bytes, a call past either fails at once with ResourceExhausted (counted),
// and a call whose deadline passes leaves the outbox then, making room.
TEST(AmqpTransportNoBrokerTest, TheOutboxIsBoundedAndExpiredCallsLeaveIt) {
  SilentListener silent;
  FailoverChannelOptions options;
  options.amqp.url = "amqp://guest:guest@127.0.0.1:" + std::to_string(silent.port()) + "/";
  options.amqp.connect_timeout = absl::Seconds(3);  // the first attempt lasts this
  options.outbox_max_calls = 3;
  options.outbox_max_bytes = 1000;
  auto created = AmqpTransport::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  AmqpTransport& client = **created;

  // Three short calls fill the outbox; a fourth is refused at once.
  std::vector<std::future<TransportResult>> waiting;
  auto call = [&](size_t bytes, absl::Duration deadline) {
    auto promise = std::make_shared<std::promise<TransportResult>>();
    std::future<TransportResult> future = promise->get_future();
    client.CallAsync(kListMethod, std::string(bytes, 'x'), Until(absl::Now() + deadline),
                     [promise](TransportResult result) { promise->set_value(std::move(result)); });
    return future;
  };
  for (int i = 0; i < 3; ++i) waiting.push_back(call(10, absl::Milliseconds(200)));
  std::future<TransportResult> refused = call(10, absl::Seconds(30));
  ASSERT_EQ(refused.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  TransportResult full = refused.get();
  EXPECT_EQ(full.response.status().code(), absl::StatusCode::kResourceExhausted)
      << full.response.status();
  EXPECT_NE(full.response.status().message().find("outbox_max_calls 3"), absl::string_view::npos)
      << full.response.status();
  EXPECT_EQ(client.outbox_refused(), 1u);

  // Their deadlines pass long before the connection attempt ends: each
  // leaves the outbox then, so three new calls fit again...
  for (auto& future : waiting) {
    ASSERT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    EXPECT_EQ(future.get().response.status().code(), absl::StatusCode::kDeadlineExceeded);
  }
  std::vector<std::future<TransportResult>> more;
  more.push_back(call(600, absl::Seconds(30)));
  // ...within the byte bound: 600 + 500 bytes of requests would pass 1000.
  std::future<TransportResult> too_big = call(500, absl::Seconds(30));
  ASSERT_EQ(too_big.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(too_big.get().response.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(client.outbox_refused(), 2u);
  more.push_back(call(400, absl::Seconds(30)));
  EXPECT_EQ(more.back().wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "400 more bytes fit";
  // The attempt fails (the silent port never answers): the waiting calls
  // fail with Unavailable, and the outbox is empty again.
  for (auto& future : more) {
    ASSERT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    EXPECT_EQ(future.get().response.status().code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(client.outbox_refused(), 2u);
}

TEST(AmqpTransportNoBrokerTest, UnreachableBrokerIsKnownAndFailsFast) {
  // A loopback port nobody listens on.
  const int port = filemesh::testing::FreeLoopbackPort();

  FailoverChannelOptions options;
  options.amqp.url = "amqp://guest:guest@127.0.0.1:" + std::to_string(port) + "/";
  auto client = AmqpTransport::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();  // not a Create error
  EXPECT_TRUE((*client)->KnownUnavailable());
  const absl::Time start = absl::Now();
  TransportResult result =
      (*client)->Call(kListMethod, ListRequestBytes("x"), absl::Now() + absl::Seconds(30));
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(result.response.status().message().find("guest:guest"), absl::string_view::npos);
}

TEST(AmqpTransportNoBrokerTest, CreateRejectsBadOptions) {
  FailoverChannelOptions client;
  client.amqp.url = "amqp://u:secret@h:notaport/";
  auto transport = AmqpTransport::Create(client);
  EXPECT_EQ(transport.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(transport.status().message().find("secret"), absl::string_view::npos);
  // The message size limit has gRPC's range on AMQP too.
  client.amqp.url = "amqp://localhost";
  for (const size_t bytes : {size_t{0}, size_t{INT32_MAX} + 1}) {
    client.max_message_bytes = bytes;
    EXPECT_EQ(AmqpTransport::Create(client).status().code(), absl::StatusCode::kInvalidArgument)
        << bytes;
  }
  client.max_message_bytes = kDefaultMaxMessageBytes;
  // A reply may not move to the orphan queue before its client could read it.
  client.share_orphan_replies = true;
  client.orphan_reply_after = absl::Milliseconds(99);
  transport = AmqpTransport::Create(client);
  EXPECT_EQ(transport.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(transport.status().message().find("orphan_reply_after must be at least 100ms"),
            absl::string_view::npos)
      << transport.status();
  client.orphan_reply_after = absl::Milliseconds(100);
  EXPECT_TRUE(AmqpTransport::Create(client).ok());
  client.share_orphan_replies = false;

  EchoService service(1);
  AmqpServerOptions server;
  server.amqp.url = "amqp://localhost";
  server.dispatch = service.dispatcher();
  EXPECT_EQ(AmqpServer::Create(server).status().code(), absl::StatusCode::kInvalidArgument)
      << "no services";
  server.services = {"/filemesh.v1.FileLister/List"};
  EXPECT_EQ(AmqpServer::Create(server).status().code(), absl::StatusCode::kInvalidArgument)
      << "a method, not a service";
  server.services = {kListerService};
  server.dispatch = nullptr;
  EXPECT_EQ(AmqpServer::Create(server).status().code(), absl::StatusCode::kInvalidArgument)
      << "no dispatcher";
  server.dispatch = service.dispatcher();
  EXPECT_TRUE(AmqpServer::Create(server).ok());

  // Every queue bound must be positive, on both sides.
  for (int which = 0; which < 4; ++which) {
    QueueLimits limits;
    if (which == 0) limits.max_length = 0;
    if (which == 1) limits.max_deliveries = 0;
    if (which == 2) limits.dead_letter_ttl = absl::ZeroDuration();
    if (which == 3) limits.dead_letter_max_length = -1;
    server.amqp.queue_limits = limits;
    EXPECT_EQ(AmqpServer::Create(server).status().code(), absl::StatusCode::kInvalidArgument)
        << which;
    FailoverChannelOptions bounded;
    bounded.amqp.url = "amqp://localhost";
    bounded.amqp.queue_limits = limits;
    EXPECT_EQ(AmqpTransport::Create(bounded).status().code(), absl::StatusCode::kInvalidArgument)
        << which;
  }
  server.amqp.queue_limits = QueueLimits();

  // The outbox bounds and the callback threads.
  for (int which = 0; which < 4; ++which) {
    FailoverChannelOptions bounded;
    bounded.amqp.url = "amqp://localhost";
    if (which == 0) bounded.outbox_max_calls = 0;
    if (which == 1) bounded.outbox_max_bytes = 0;
    if (which == 2) bounded.callback_threads = 0;
    if (which == 3) bounded.callback_threads = 65;
    EXPECT_EQ(AmqpTransport::Create(bounded).status().code(), absl::StatusCode::kInvalidArgument)
        << which;
  }

  // The connect timeout bounds every attempt: it must be positive, on both sides.
  for (const absl::Duration timeout : {absl::ZeroDuration(), absl::Seconds(-1)}) {
    server.amqp.connect_timeout = timeout;
    const absl::Status refused = AmqpServer::Create(server).status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(refused.message().find("connect_timeout"), absl::string_view::npos) << refused;
    FailoverChannelOptions timed;
    timed.amqp.url = "amqp://localhost";
    timed.amqp.connect_timeout = timeout;
    EXPECT_EQ(AmqpTransport::Create(timed).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace filemesh::internal
