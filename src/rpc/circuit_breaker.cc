#include "rpc/circuit_breaker.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace filemesh::internal {

CircuitBreaker::CircuitBreaker(const FailoverPolicy& policy, Clock clock)
    : policy_(policy),
      clock_(clock ? std::move(clock) : Clock([] { return absl::Now(); })),
      cooldown_(policy.breaker_cooldown) {}

void CircuitBreaker::Refresh() {
  if (state_ == BreakerState::kOpen && clock_() >= open_until_) {
    MoveTo(BreakerState::kHalfOpen);
    probe_in_flight_ = false;
  }
}

void CircuitBreaker::MoveTo(BreakerState next) {
  if (next == state_) return;
  const BreakerState previous = std::exchange(state_, next);
  if (next == BreakerState::kOpen) ++times_opened_;
  // Called under the lock: callbacks are documented to be short and not to
  // call back into the channel.
  if (policy_.on_breaker_change) policy_.on_breaker_change(previous, next);
}

bool CircuitBreaker::AllowPrimary() {
  std::lock_guard<std::mutex> lock(mu_);
  Refresh();
  switch (state_) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kOpen:
      return false;
    case BreakerState::kHalfOpen:
      if (probe_in_flight_) return false;
      probe_in_flight_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::RecordSuccess() {
  std::lock_guard<std::mutex> lock(mu_);
  consecutive_failures_ = 0;
  probe_in_flight_ = false;
  cooldown_ = policy_.breaker_cooldown;
  MoveTo(BreakerState::kClosed);
}

void CircuitBreaker::RecordFailure() {
  std::lock_guard<std::mutex> lock(mu_);
  Refresh();
  switch (state_) {
    case BreakerState::kClosed:
      if (++consecutive_failures_ < std::max(1, policy_.breaker_failure_threshold)) return;
      cooldown_ = policy_.breaker_cooldown;
      break;
    case BreakerState::kHalfOpen:
      // The probe failed: wait twice as long before the next one.
      cooldown_ = std::min(cooldown_ * 2, policy_.breaker_max_cooldown);
      probe_in_flight_ = false;
      break;
    case BreakerState::kOpen:
      // A call let through before the breaker opened reports late.
      return;
  }
  open_until_ = clock_() + cooldown_;
  MoveTo(BreakerState::kOpen);
}

BreakerState CircuitBreaker::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  // What AllowPrimary would see; the transition itself happens there.
  if (state_ == BreakerState::kOpen && clock_() >= open_until_) return BreakerState::kHalfOpen;
  return state_;
}

uint64_t CircuitBreaker::times_opened() const {
  std::lock_guard<std::mutex> lock(mu_);
  return times_opened_;
}

absl::Duration CircuitBreaker::current_cooldown() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cooldown_;
}

}  // namespace filemesh::internal
