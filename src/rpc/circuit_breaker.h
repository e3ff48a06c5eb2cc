// The failover policy's circuit breaker, as plain logic over an injectable
// clock so its timing is tested without waiting.
//
// Closed: every call may try the primary; consecutive failures are counted
// and reaching the threshold opens the breaker. Open: no call tries the
// primary until the cooldown ends. Half-open: exactly one call (the probe)
// tries the primary; its success closes the breaker and resets the cooldown,
// its failure reopens it with the cooldown doubled (up to the maximum).
//
// Each call that may try the primary gets a ticket naming the state it was
// let through in (an epoch, counted up at every change), and reports its
// outcome with it. Only outcomes of calls started in the current state move
// the breaker: a late success from a call started before the breaker opened
// does not close it, a late failure from before a probe does not reopen it,
// and in half-open state only the probe's ticket counts.

#ifndef FILEMESH_SRC_RPC_CIRCUIT_BREAKER_H_
#define FILEMESH_SRC_RPC_CIRCUIT_BREAKER_H_

#include <cstdint>
#include <functional>

#include "absl/time/time.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/rpc/failover_policy.hpp"

namespace filemesh::internal {

class CircuitBreaker {
 public:
  using Clock = std::function<absl::Time()>;

  // `clock` defaults to absl::Now.
  explicit CircuitBreaker(const FailoverPolicy& policy, Clock clock = nullptr);

  // A call's permission to try the primary.
  struct Ticket {
    bool allowed = false;
    // The breaker's epoch when the call was let through.
    uint64_t epoch = 0;
    // The call is the half-open state's one probe.
    bool probe = false;
  };

  // Whether this call may try the primary. In half-open state only the first
  // caller is let through (it becomes the probe and must report back).
  Ticket AllowPrimary();

  // The outcome of a primary attempt that AllowPrimary() let through; a
  // ticket from an earlier state changes nothing.
  void RecordSuccess(const Ticket& ticket);
  void RecordFailure(const Ticket& ticket);

  BreakerState state() const;
  uint64_t times_opened() const;
  absl::Duration current_cooldown() const;

 private:
  // Applies open -> half-open when the cooldown is over.
  void Refresh() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MoveTo(BreakerState next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const FailoverPolicy policy_;
  const Clock clock_;
  mutable Mutex mu_;
  BreakerState state_ ABSL_GUARDED_BY(mu_) = BreakerState::kClosed;
  int consecutive_failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration cooldown_ ABSL_GUARDED_BY(mu_);
  absl::Time open_until_ ABSL_GUARDED_BY(mu_);
  bool probe_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;  // counted up at every state change
  uint64_t times_opened_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_CIRCUIT_BREAKER_H_
