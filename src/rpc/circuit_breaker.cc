#include "rpc/circuit_breaker.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace filemesh {

std::string_view BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half-open";
  }
  return "closed";
}

namespace internal {

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
  ++epoch_;
  if (next == BreakerState::kOpen) ++times_opened_;
  // Called under the lock: callbacks are documented to be short and not to
  // call back into the channel.
  if (policy_.on_breaker_change) policy_.on_breaker_change(previous, next);
}

CircuitBreaker::Ticket CircuitBreaker::AllowPrimary() {
  MutexLock lock(&mu_);
  Refresh();
  Ticket ticket;
  ticket.epoch = epoch_;
  switch (state_) {
    case BreakerState::kClosed:
      ticket.allowed = true;
      break;
    case BreakerState::kOpen:
      break;
    case BreakerState::kHalfOpen:
      if (probe_in_flight_) break;
      probe_in_flight_ = true;
      ticket.allowed = true;
      ticket.probe = true;
      break;
  }
  return ticket;
}

void CircuitBreaker::RecordSuccess(const Ticket& ticket) {
  MutexLock lock(&mu_);
  Refresh();
  if (!ticket.allowed || ticket.epoch != epoch_) return;  // from an earlier state
  if (state_ == BreakerState::kHalfOpen && !ticket.probe) return;
  consecutive_failures_ = 0;
  probe_in_flight_ = false;
  cooldown_ = policy_.breaker_cooldown;
  MoveTo(BreakerState::kClosed);
}

void CircuitBreaker::RecordFailure(const Ticket& ticket) {
  MutexLock lock(&mu_);
  Refresh();
  if (!ticket.allowed || ticket.epoch != epoch_) return;  // from an earlier state
  if (state_ == BreakerState::kHalfOpen && !ticket.probe) return;
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
      return;  // no ticket of this epoch was let through
  }
  open_until_ = clock_() + cooldown_;
  MoveTo(BreakerState::kOpen);
}

BreakerState CircuitBreaker::state() const {
  MutexLock lock(&mu_);
  // What AllowPrimary would see; the transition itself happens there.
  if (state_ == BreakerState::kOpen && clock_() >= open_until_) return BreakerState::kHalfOpen;
  return state_;
}

uint64_t CircuitBreaker::times_opened() const {
  MutexLock lock(&mu_);
  return times_opened_;
}

absl::Duration CircuitBreaker::current_cooldown() const {
  MutexLock lock(&mu_);
  return cooldown_;
}

}  // namespace internal
}  // namespace filemesh
