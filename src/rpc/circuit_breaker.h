// The failover policy's circuit breaker, as plain logic over an injectable
// clock so its timing is tested without waiting.
//
// Closed: every call may try the primary; consecutive failures are counted
// and reaching the threshold opens the breaker. Open: no call tries the
// primary until the cooldown ends. Half-open: exactly one call (the probe)
// tries the primary; its success closes the breaker and resets the cooldown,
// its failure reopens it with the cooldown doubled (up to the maximum).

#ifndef FILEMESH_SRC_RPC_CIRCUIT_BREAKER_H_
#define FILEMESH_SRC_RPC_CIRCUIT_BREAKER_H_

#include <cstdint>
#include <functional>
#include <mutex>

#include "absl/time/time.h"
#include "filemesh/failover_channel.hpp"

namespace filemesh::internal {

class CircuitBreaker {
 public:
  using Clock = std::function<absl::Time()>;

  // `clock` defaults to absl::Now.
  explicit CircuitBreaker(const FailoverPolicy& policy, Clock clock = nullptr);

  // Whether this call may try the primary. In half-open state only the first
  // caller is let through (it becomes the probe and must report back).
  bool AllowPrimary();

  // The outcome of a primary attempt that AllowPrimary() let through.
  void RecordSuccess();
  void RecordFailure();

  BreakerState state() const;
  uint64_t times_opened() const;
  absl::Duration current_cooldown() const;

 private:
  // Applies open -> half-open when the cooldown is over. Callers hold mu_.
  void Refresh();
  void MoveTo(BreakerState next);

  const FailoverPolicy policy_;
  const Clock clock_;
  mutable std::mutex mu_;
  BreakerState state_ = BreakerState::kClosed;
  int consecutive_failures_ = 0;
  absl::Duration cooldown_;
  absl::Time open_until_;
  bool probe_in_flight_ = false;
  uint64_t times_opened_ = 0;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_CIRCUIT_BREAKER_H_
