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
      ASSERT_TRUE(b.AllowPrimary());
      b.RecordFailure();
    }
  }

  FailoverPolicy policy_;
  absl::Time now_ = absl::FromUnixSeconds(1000);
  std::vector<std::pair<BreakerState, BreakerState>> changes_;
};

TEST_F(CircuitBreakerTest, OpensAfterThresholdConsecutiveFailures) {
  CircuitBreaker b = MakeBreaker();
  Fail(b, 2);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  b.RecordSuccess();  // resets the count
  Fail(b, 2);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  Fail(b, 1);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_FALSE(b.AllowPrimary());
  EXPECT_EQ(b.times_opened(), 1u);
  ASSERT_EQ(changes_.size(), 1u);
  EXPECT_EQ(changes_[0].second, BreakerState::kOpen);
}

TEST_F(CircuitBreakerTest, LetsOneProbeThroughAfterCooldownAndClosesOnSuccess) {
  CircuitBreaker b = MakeBreaker();
  Fail(b, 3);
  now_ += absl::Milliseconds(999);
  EXPECT_FALSE(b.AllowPrimary());
  now_ += absl::Milliseconds(1);
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  EXPECT_TRUE(b.AllowPrimary());   // the probe
  EXPECT_FALSE(b.AllowPrimary());  // everyone else waits for it
  b.RecordSuccess();
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  EXPECT_TRUE(b.AllowPrimary());
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
    EXPECT_FALSE(b.AllowPrimary()) << "before the cooldown of " << wait;
    now_ += absl::Milliseconds(1);
    ASSERT_TRUE(b.AllowPrimary()) << "after the cooldown of " << wait;
    b.RecordFailure();
    EXPECT_EQ(b.state(), BreakerState::kOpen);
    EXPECT_EQ(b.current_cooldown(), next);
  }
  EXPECT_EQ(b.times_opened(), 4u);
}

TEST_F(CircuitBreakerTest, LateFailureReportsWhileOpenChangeNothing) {
  CircuitBreaker b = MakeBreaker();
  // Three calls let through concurrently, all failing: one opening.
  ASSERT_TRUE(b.AllowPrimary());
  ASSERT_TRUE(b.AllowPrimary());
  ASSERT_TRUE(b.AllowPrimary());
  ASSERT_TRUE(b.AllowPrimary());
  for (int i = 0; i < 4; ++i) b.RecordFailure();
  EXPECT_EQ(b.times_opened(), 1u);
  EXPECT_EQ(b.current_cooldown(), absl::Seconds(1));
}

TEST_F(CircuitBreakerTest, ThresholdBelowOneMeansOne) {
  policy_.breaker_failure_threshold = 0;
  CircuitBreaker b = MakeBreaker();
  Fail(b, 1);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
}

}  // namespace
}  // namespace filemesh::internal
