#include "filemesh/failover_channel.hpp"

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "filemesh/log.hpp"
#include "rpc/circuit_breaker.h"
#include "rpc/grpc_transport.h"
#include "rpc/process_tuning.h"
#include "rpc/transport_factory.h"

namespace filemesh {

std::string_view TransportKindName(TransportKind kind) {
  switch (kind) {
    case TransportKind::kGrpc:
      return "grpc";
    case TransportKind::kAmqp:
      return "amqp";
    case TransportKind::kInMemory:
      return "in-memory";
    case TransportKind::kNone:
      break;
  }
  return "none";
}

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

namespace {

// A primary failure that the fallback may mend: the call did not get through
// (or not in time). Callers cannot cancel a call, so CANCELLED means the
// server went away mid-call (a shutdown). Answers the service gave are
// returned as they are.
bool IsTransportFailure(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded ||
         status.code() == absl::StatusCode::kCancelled;
}

}  // namespace

struct FailoverChannel::Impl {
  Impl(std::unique_ptr<Transport> p, std::unique_ptr<Transport> f, FailoverPolicy pol)
      : primary(std::move(p)),
        fallback(std::move(f)),
        policy(WithBreakerLog(std::move(pol))),
        breaker(policy) {}

  // `policy` with a log line per breaker state change in front of the
  // caller's own callback.
  FailoverPolicy WithBreakerLog(FailoverPolicy p) {
    p.on_breaker_change = [this, next = std::move(p.on_breaker_change)](BreakerState from,
                                                                        BreakerState to) {
      LogEvent(
          to == BreakerState::kOpen ? LogLevel::kWarning : LogLevel::kInfo, "breaker_state_changed",
          {{"target", target}, {"from", BreakerStateName(from)}, {"to", BreakerStateName(to)}});
      if (next) next(from, to);
    };
    return p;
  }

  std::unique_ptr<Transport> primary;
  std::unique_ptr<Transport> fallback;
  // What the primary reaches, for log lines: the gRPC target, or the
  // transport's kind for channels built from transports. Set before the
  // channel is shared, read-only afterwards.
  std::string target;
  const FailoverPolicy policy;
  internal::CircuitBreaker breaker;

  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> served_by_primary{0};
  std::atomic<uint64_t> served_by_fallback{0};
  std::atomic<uint64_t> failovers{0};
  std::atomic<uint64_t> queued{0};
};

absl::StatusOr<std::shared_ptr<FailoverChannel>> FailoverChannel::Create(
    const FailoverChannelOptions& options) {
  if (options.grpc_target.empty() && options.amqp_url.empty()) {
    return absl::InvalidArgumentError("a FailoverChannel needs a gRPC target or an AMQP URL");
  }
  std::unique_ptr<Transport> primary;
  std::unique_ptr<Transport> fallback;
  if (!options.grpc_target.empty()) {
    internal::GrpcTransportOptions grpc;
    grpc.target = options.grpc_target;
    grpc.reconnect_backoff_min = options.reconnect_backoff_min;
    // A breaker probe finds the server back only if gRPC has tried to
    // reconnect since: never let its backoff outgrow the breaker's cooldown.
    grpc.reconnect_backoff_max =
        std::min(options.reconnect_backoff_max,
                 std::max(options.policy.breaker_cooldown, options.reconnect_backoff_min));
    absl::StatusOr<std::unique_ptr<internal::GrpcTransport>> t =
        internal::GrpcTransport::Create(grpc);
    if (!t.ok()) return t.status();
    primary = *std::move(t);
  }
  if (!options.amqp_url.empty()) {
    absl::StatusOr<std::unique_ptr<Transport>> t = internal::MakeAmqpTransport(options);
    if (!t.ok()) return t.status();
    fallback = *std::move(t);
  }
  auto channel =
      std::make_shared<FailoverChannel>(std::move(primary), std::move(fallback), options.policy);
  if (!options.grpc_target.empty()) channel->impl_->target = options.grpc_target;
  return channel;
}

FailoverChannel::FailoverChannel(std::unique_ptr<Transport> primary,
                                 std::unique_ptr<Transport> fallback, FailoverPolicy policy)
    : impl_(std::make_unique<Impl>(std::move(primary), std::move(fallback), std::move(policy))) {
  if (impl_->primary != nullptr) impl_->target = TransportKindName(impl_->primary->kind());
  internal::ApplyProcessTuning();
}

FailoverChannel::~FailoverChannel() = default;

CallResult FailoverChannel::Call(const std::string& method, const std::string& request,
                                 absl::Time deadline) {
  Impl& d = *impl_;
  ++d.calls;
  CallResult result;
  bool tried_primary = false;
  bool breaker_refused = false;

  if (d.primary != nullptr) {
    if (!d.breaker.AllowPrimary()) {
      breaker_refused = true;
    } else if (d.primary->KnownUnavailable()) {
      // The channel already knows it cannot connect: fail over at once.
      d.breaker.RecordFailure();
      result.response = absl::UnavailableError("the primary transport cannot connect");
    } else {
      const absl::Time attempt_deadline =
          std::min(deadline, absl::Now() + d.policy.attempt_timeout);
      TransportResult r = d.primary->Call(method, request, attempt_deadline);
      ++result.info.attempts;
      tried_primary = true;
      if (r.response.ok() || !IsTransportFailure(r.response.status())) {
        d.breaker.RecordSuccess();
        ++d.served_by_primary;
        result.response = std::move(r.response);
        result.info.served_by = d.primary->kind();
        return result;
      }
      d.breaker.RecordFailure();
      result.response = std::move(r.response);
    }
  }

  if (d.fallback == nullptr) {
    if (d.primary == nullptr) {
      result.response = absl::UnavailableError("no transport is configured");
    } else if (breaker_refused) {
      result.response = absl::UnavailableError(
          "the primary transport's circuit breaker is open and there is no fallback");
    }
    return result;
  }
  if (absl::Now() >= deadline) {
    result.response = absl::DeadlineExceededError(
        absl::StrCat("the deadline passed before the call could fail over: ",
                     result.response.status().ToString()));
    return result;
  }
  if (tried_primary) ++d.failovers;
  TransportResult r = d.fallback->Call(method, request, deadline);
  ++result.info.attempts;
  result.info.served_by = d.fallback->kind();
  if (!r.queued_id.empty()) {
    ++d.queued;
    result.info.queued = true;
    result.info.operation_id = r.queued_id;
  } else {
    ++d.served_by_fallback;
  }
  result.response = std::move(r.response);
  return result;
}

LateReply FailoverChannel::TakeLateReply(const std::string& operation_id) {
  if (impl_->fallback != nullptr) {
    LateReply reply = impl_->fallback->TakeLateReply(operation_id);
    if (reply.state != LateReply::State::kUnknown) return reply;
  }
  if (impl_->primary != nullptr) return impl_->primary->TakeLateReply(operation_id);
  return {};
}

BreakerState FailoverChannel::breaker_state() const { return impl_->breaker.state(); }

ChannelStats FailoverChannel::stats() const {
  ChannelStats s;
  s.calls = impl_->calls.load();
  s.served_by_primary = impl_->served_by_primary.load();
  s.served_by_fallback = impl_->served_by_fallback.load();
  s.failovers = impl_->failovers.load();
  s.queued = impl_->queued.load();
  s.breaker_opened = impl_->breaker.times_opened();
  s.breaker = impl_->breaker.state();
  return s;
}

bool FailoverChannel::primary_available() const {
  return impl_->primary != nullptr && !impl_->primary->KnownUnavailable() &&
         impl_->breaker.state() != BreakerState::kOpen;
}

bool FailoverChannel::fallback_available() const {
  return impl_->fallback != nullptr && !impl_->fallback->KnownUnavailable();
}

bool FailoverChannel::has_primary() const { return impl_->primary != nullptr; }

bool FailoverChannel::has_fallback() const { return impl_->fallback != nullptr; }

}  // namespace filemesh
