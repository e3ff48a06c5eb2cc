#include "rpc/circuit_breaker.h"

#include <vector>

#include "gtest/gtest.h"

namespace filemesh::internal {
namespace {

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreakerTest() {
    policy_.breaker_failure_threshold = 3;
    policy_.breaker_cooldown = absl::Seconds(1);
    policy_.breaker_max_cooldown = absl::Seconds(4);
    policy_.on_breaker_change = [this](BreakerState from, BreakerState to) {
      changes_.push_back({from, to});
    };
  }

  CircuitBreaker MakeBreaker() {
    return CircuitBreaker(policy_, [this] { return now_; });
  }

  void Fail(CircuitBreaker& b, int times) {
    for (int i = 0; i < times; ++i) {
      const CircuitBreaker::Ticket ticket = b.AllowPrimary();
      ASSERT_TRUE(ticket.allowed);
      b.RecordFailure(ticket);
    }
  }
  void Succeed(CircuitBreaker& b) {
    const CircuitBreaker::Ticket ticket = b.AllowPrimary();
    ASSERT_TRUE(ticket.allowed);
    b.RecordSuccess(ticket);
  }

  FailoverPolicy policy_;
  absl::Time now_ = absl::FromUnixSeconds(1000);
  std::vector<std::pair<BreakerState, BreakerState>> changes_;
};

TEST_F(CircuitBreakerTest, OpensAfterThresholdConsecutiveFailures) {
  CircuitBreaker b = MakeBreaker();
  Fail(b, 2);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  Succeed(b);  // resets the count
  Fail(b, 2);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  Fail(b, 1);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_FALSE(b.AllowPrimary().allowed);
  EXPECT_EQ(b.times_opened(), 1u);
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0].second, BreakerState::kOpen);
}

TEST_F(CircuitBreakerTest, LetsOneProbeThroughAfterCooldownAndClosesOnSuccess) {
  CircuitBreaker b = MakeBreaker();
  Fail(b, 3);
  now_ += absl::Milliseconds(999);
  EXPECT_FALSE(b.AllowPrimary().allowed);
  now_ += absl::Milliseconds(1);
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  const CircuitBreaker::Ticket probe = b.AllowPrimary();
  EXPECT_TRUE(probe.allowed);
  EXPECT_TRUE(probe.probe);
  EXPECT_FALSE(b.AllowPrimary().allowed);  // everyone else waits for it
  b.RecordSuccess(probe);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  EXPECT_TRUE(b.AllowPrimary().allowed);
  EXPECT_EQ(b.current_cooldown(), absl::Seconds(1));
  ASSERT_EQ(changes_.size(), 3u);
  EXPECT_EQ(changes_[1], std::make_pair(BreakerState::kOpen, BreakerState::kHalfOpen));
  EXPECT_EQ(changes_[2], std::make_pair(BreakerState::kHalfOpen, BreakerState::kClosed));
}

TEST_F(CircuitBreakerTest, FailedProbesDoubleTheCooldownUpToTheMaximum) {
  CircuitBreaker b = MakeBreaker();
  Fail(b, 3);
  EXPECT_EQ(b.current_cooldown(), absl::Seconds(1));
  for (absl::Duration next : {absl::Seconds(2), absl::Seconds(4), absl::Seconds(4)}) {
    const absl::Duration wait = b.current_cooldown();
    now_ += wait - absl::Milliseconds(1);
    EXPECT_FALSE(b.AllowPrimary().allowed) << "before the cooldown of " << wait;
    now_ += absl::Milliseconds(1);
    const CircuitBreaker::Ticket probe = b.AllowPrimary();
    ASSERT_TRUE(probe.allowed) << "after the cooldown of " << wait;
    b.RecordFailure(probe);
    EXPECT_EQ(b.state(), BreakerState::kOpen);
    EXPECT_EQ(b.current_cooldown(), next);
  }
  EXPECT_EQ(b.times_opened(), 4u);
}

TEST_F(CircuitBreakerTest, LateFailureReportsWhileOpenChangeNothing) {
  CircuitBreaker b = MakeBreaker();
  // Four calls let through concurrently, all failing: one opening.
  std::vector<CircuitBreaker::Ticket> tickets;
  for (int i = 0; i < 4; ++i) tickets.push_back(b.AllowPrimary());
  for (const auto& ticket : tickets) b.RecordFailure(ticket);
  EXPECT_EQ(b.times_opened(), 1u);
  EXPECT_EQ(b.current_cooldown(), absl::Seconds(1));
}

// A call started while closed that succeeds after the breaker opened says
// nothing about the primary now: it must not close the breaker.
TEST_F(CircuitBreakerTest, LateSuccessFromBeforeTheBreakerOpenedDoesNotCloseIt) {
  CircuitBreaker b = MakeBreaker();
  const CircuitBreaker::Ticket slow = b.AllowPrimary();
  Fail(b, 3);
  ASSERT_EQ(b.state(), BreakerState::kOpen);
  b.RecordSuccess(slow);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  // Nor once half-open: only the probe decides.
  now_ += absl::Seconds(1);
  const CircuitBreaker::Ticket probe = b.AllowPrimary();
  ASSERT_TRUE(probe.probe);
  b.RecordSuccess(slow);
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  b.RecordFailure(probe);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_EQ(b.current_cooldown(), absl::Seconds(2));
}

// In half-open state exactly one call is the probe, however many ask at
// once, and late outcomes of older calls neither close nor reopen it.
TEST_F(CircuitBreakerTest, ConcurrentCallsInHalfOpenStateMakeOneIdentifiedProbe) {
  CircuitBreaker b = MakeBreaker();
  const CircuitBreaker::Ticket old_call = b.AllowPrimary();
  Fail(b, 3);
  now_ += absl::Seconds(1);
  std::vector<CircuitBreaker::Ticket> asked;
  for (int i = 0; i < 10; ++i) asked.push_back(b.AllowPrimary());
  int probes = 0;
  for (const auto& ticket : asked) probes += ticket.allowed && ticket.probe ? 1 : 0;
  EXPECT_EQ(probes, 1);
  EXPECT_TRUE(asked[0].probe);
  for (size_t i = 1; i < asked.size(); ++i) EXPECT_FALSE(asked[i].allowed);
  b.RecordFailure(old_call);  // a failure from before: not the probe's
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  b.RecordSuccess(asked[0]);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  // And once closed, the old call's failure does not count towards opening.
  b.RecordFailure(old_call);
  Fail(b, 2);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
}

TEST_F(CircuitBreakerTest, ThresholdBelowOneMeansOne) {
  policy_.breaker_failure_threshold = 0;
  CircuitBreaker b = MakeBreaker();
  Fail(b, 1);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
}

}  // namespace
}  // namespace filemesh::internal
