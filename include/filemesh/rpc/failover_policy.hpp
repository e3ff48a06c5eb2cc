// When FailoverChannel gives up on its primary transport: the per-attempt
// acknowledgement deadline and the circuit breaker (failover_channel.hpp
// describes the whole policy).

#ifndef FILEMESH_RPC_FAILOVER_POLICY_HPP_
#define FILEMESH_RPC_FAILOVER_POLICY_HPP_

#include <functional>
#include <string_view>

#include "absl/time/time.h"

namespace filemesh {

enum class BreakerState { kClosed, kOpen, kHalfOpen };

// "closed", "open", "half-open".
std::string_view BreakerStateName(BreakerState state);

struct FailoverPolicy {
  // Longest the primary's server may take to acknowledge a call before the
  // call fails over (not how long the call may take: its deadline says).
  absl::Duration attempt_timeout = absl::Milliseconds(250);
  // Consecutive primary failures that open the breaker.
  int breaker_failure_threshold = 3;
  // First open period; doubles after each failed probe, up to the maximum.
  absl::Duration breaker_cooldown = absl::Seconds(1);
  absl::Duration breaker_max_cooldown = absl::Seconds(30);
  // Told of every breaker state change (from the calling thread; keep it
  // short and do not call back into the channel).
  std::function<void(BreakerState from, BreakerState to)> on_breaker_change;
};

}  // namespace filemesh

#endif  // FILEMESH_RPC_FAILOVER_POLICY_HPP_
