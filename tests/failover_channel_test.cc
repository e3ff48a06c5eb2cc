// FailoverChannel's policy over in-memory transports (no network): which
// transport serves, when it fails over, the breaker, queued calls, counters.

#include "filemesh/rpc/failover_channel.hpp"

#include <memory>
#include <string>

#include "filemesh/rpc/clients.hpp"
#include "filemesh/testing/in_memory_transport.hpp"
#include "gtest/gtest.h"

namespace filemesh {
namespace {

using testing::InMemoryTransport;

// A lister that names the request path, so answers can be told apart.
class EchoLister : public FileListerInterface {
 public:
  explicit EchoLister(std::string tag) : tag_(std::move(tag)) {}
  absl::StatusOr<v1::ListResponse> List(const v1::ListRequest& request,
                                        absl::Time /*deadline*/) const override {
    if (request.path() == "missing") return absl::NotFoundError("no such directory: missing");
    if (request.path() == "flaky") return absl::UnavailableError("handler says unavailable");
    v1::ListResponse response;
    response.add_entries()->set_path(tag_ + ":" + request.path());
    return response;
  }

 private:
  std::string tag_;
};

class FailoverChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto primary = std::make_unique<InMemoryTransport>();
    auto fallback = std::make_unique<InMemoryTransport>();
    primary_ = primary.get();
    fallback_ = fallback.get();
    primary_->ServeFileLister(primary_lister_);
    fallback_->ServeFileLister(fallback_lister_);
    policy_.breaker_failure_threshold = 3;
    policy_.breaker_cooldown = absl::Hours(1);  // stays open for the whole test
    channel_ = std::make_shared<FailoverChannel>(std::move(primary), std::move(fallback), policy_);
    client_ = std::make_unique<FileListerClient>(channel_);
  }

  absl::StatusOr<v1::ListResponse> List(const std::string& path, CallInfo* info) {
    v1::ListRequest request;
    request.set_path(path);
    return client_->List(request, absl::Now() + absl::Seconds(5), info);
  }

  EchoLister primary_lister_{"primary"};
  EchoLister fallback_lister_{"fallback"};
  InMemoryTransport* primary_ = nullptr;
  InMemoryTransport* fallback_ = nullptr;
  FailoverPolicy policy_;
  std::shared_ptr<FailoverChannel> channel_;
  std::unique_ptr<FileListerClient> client_;
};

TEST_F(FailoverChannelTest, HealthyPrimaryServes) {
  CallInfo info;
  absl::StatusOr<v1::ListResponse> r = List("a", &info);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries(0).path(), "primary:a");
  EXPECT_EQ(info.served_by, TransportKind::kInMemory);
  EXPECT_EQ(info.attempts, 1);
  EXPECT_EQ(fallback_->calls(), 0u);
}

TEST_F(FailoverChannelTest, UnavailablePrimaryFailsOverWithTheSameRequest) {
  primary_->SetUnavailable(true);
  CallInfo info;
  absl::StatusOr<v1::ListResponse> r = List("b", &info);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries(0).path(), "fallback:b");
  EXPECT_EQ(info.attempts, 1);  // known down: not even tried
  EXPECT_EQ(primary_->calls(), 0u);
  EXPECT_EQ(channel_->stats().served_by_fallback, 1u);
}

TEST_F(FailoverChannelTest, ApplicationErrorsAreReturnedNotFailedOver) {
  CallInfo info;
  absl::StatusOr<v1::ListResponse> r = List("missing", &info);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "no such directory: missing");
  EXPECT_EQ(info.attempts, 1);
  EXPECT_EQ(fallback_->calls(), 0u);
  EXPECT_EQ(channel_->breaker_state(), BreakerState::kClosed);
}

TEST_F(FailoverChannelTest, UnavailableAnswerFromThePrimaryFailsOver) {
  CallInfo info;
  absl::StatusOr<v1::ListResponse> r = List("flaky", &info);
  // The fallback's handler answers the same way: its answer is returned.
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(info.attempts, 2);
  EXPECT_EQ(channel_->stats().failovers, 1u);
}

TEST_F(FailoverChannelTest, BreakerOpensAndSendsCallsStraightToTheFallback) {
  primary_->SetUnavailable(true);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(List("x", nullptr).ok());
  EXPECT_EQ(channel_->breaker_state(), BreakerState::kOpen);
  primary_->SetUnavailable(false);
  const uint64_t primary_calls = primary_->calls();
  CallInfo info;
  ASSERT_TRUE(List("y", &info).ok());
  EXPECT_EQ(primary_->calls(), primary_calls);  // not tried while open
  EXPECT_EQ(info.attempts, 1);
  EXPECT_EQ(channel_->stats().breaker_opened, 1u);
  EXPECT_FALSE(channel_->primary_available());
}

TEST_F(FailoverChannelTest, QueuedFallbackCallsAreFetchedLater) {
  primary_->SetUnavailable(true);
  fallback_->SetQueueing(true);
  CallInfo info;
  absl::StatusOr<v1::ListResponse> r = List("later", &info);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(info.queued);
  ASSERT_FALSE(info.operation_id.empty());
  EXPECT_EQ(client_->TakeList(info.operation_id).state, LateReply::State::kPending);
  fallback_->DeliverQueued();
  Operation<v1::ListResponse> op = client_->TakeList(info.operation_id);
  ASSERT_EQ(op.state, LateReply::State::kDone);
  ASSERT_TRUE(op.response.ok()) << op.response.status();
  EXPECT_EQ(op.response->entries(0).path(), "fallback:later");
  EXPECT_EQ(client_->TakeList(info.operation_id).state, LateReply::State::kUnknown);
  EXPECT_EQ(channel_->stats().queued, 1u);
}

TEST_F(FailoverChannelTest, NoFallbackReturnsThePrimaryError) {
  auto primary = std::make_unique<InMemoryTransport>();
  primary->SetUnavailable(true);
  FailoverChannel channel(std::move(primary), nullptr, policy_);
  CallResult r = channel.Call(kListMethod, "", absl::Now() + absl::Seconds(1));
  EXPECT_EQ(r.response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.info.served_by, TransportKind::kNone);
}

TEST_F(FailoverChannelTest, UnknownMethodIsUnimplemented) {
  CallResult r = channel_->Call("/filemesh.v1.Nope/Nothing", "", absl::Now() + absl::Seconds(1));
  EXPECT_EQ(r.response.status().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(FailoverChannelTest, CreateRejectsMissingTransports) {
  EXPECT_EQ(FailoverChannel::Create({}).status().code(), absl::StatusCode::kInvalidArgument);
  FailoverChannelOptions options;
  options.grpc_target = "127.0.0.1:1,not a target";
  EXPECT_EQ(FailoverChannel::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace filemesh
