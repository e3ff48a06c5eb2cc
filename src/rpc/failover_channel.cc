#include "filemesh/rpc/failover_channel.hpp"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/blocking_wait.h"
#include "filemesh/service/log.hpp"
#include "rpc/amqp_transport.h"
#include "rpc/circuit_breaker.h"
#include "rpc/grpc_transport.h"

namespace filemesh {

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

// One call on its way through the channel, shared by the continuations of
// its attempts.
struct PendingCall {
  std::string method;
  std::string request;
  absl::Time deadline;
  CallCallback done;
  CallResult result;
  internal::CircuitBreaker::Ticket ticket;
  bool tried_primary = false;
  bool breaker_refused = false;
};

}  // namespace

struct FailoverChannel::Impl {
  Impl(std::unique_ptr<Transport> p, std::unique_ptr<Transport> f, FailoverPolicy pol)
      : primary(std::move(p)),
        fallback(std::move(f)),
        primary_kind(primary != nullptr ? primary->kind() : TransportKind::kNone),
        fallback_kind(fallback != nullptr ? fallback->kind() : TransportKind::kNone),
        policy(WithBreakerLog(std::move(pol))),
        breaker(policy) {}

  // The primary goes first: its pending calls end (Unavailable) while the
  // fallback still exists, and `closing` keeps them from failing over.
  ~Impl() {
    closing.store(true);
    primary.reset();
    fallback.reset();
  }

  void OnPrimaryResult(const std::shared_ptr<PendingCall>& call, TransportResult r);
  // The fallback's attempt, or the end of the call when there is none.
  void TryFallback(const std::shared_ptr<PendingCall>& call);

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
  // Their kinds, for continuations that run while ~Impl resets them.
  const TransportKind primary_kind;
  const TransportKind fallback_kind;
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
  std::atomic<bool> closing{false};
};

namespace {

absl::StatusOr<std::unique_ptr<Transport>> MakeGrpcTransport(
    const FailoverChannelOptions& options) {
  internal::GrpcTransportOptions grpc;
  grpc.target = options.grpc_target;
  grpc.max_message_bytes = options.max_message_bytes;
  grpc.tls = options.grpc_tls;
  grpc.reconnect_backoff_min = options.reconnect_backoff_min;
  // A breaker probe finds the server back only if gRPC has tried to
  // reconnect since: never let its backoff outgrow the breaker's cooldown.
  grpc.reconnect_backoff_max =
      std::min(options.reconnect_backoff_max,
               std::max(options.policy.breaker_cooldown, options.reconnect_backoff_min));
  absl::StatusOr<std::unique_ptr<internal::GrpcTransport>> transport =
      internal::GrpcTransport::Create(grpc);
  if (!transport.ok()) return transport.status();
  return std::unique_ptr<Transport>(*std::move(transport));
}

}  // namespace

absl::StatusOr<std::shared_ptr<FailoverChannel>> FailoverChannel::Create(
    const FailoverChannelOptions& options) {
  if (options.grpc_target.empty() && options.amqp.url.empty()) {
    return absl::InvalidArgumentError("a FailoverChannel needs a gRPC target or an AMQP URL");
  }
  std::unique_ptr<Transport> primary;
  std::unique_ptr<Transport> fallback;
  if (!options.grpc_target.empty()) {
    absl::StatusOr<std::unique_ptr<Transport>> transport = MakeGrpcTransport(options);
    if (!transport.ok()) return transport.status();
    primary = *std::move(transport);
  }
  if (!options.amqp.url.empty()) {
    absl::StatusOr<std::unique_ptr<internal::AmqpTransport>> transport =
        internal::AmqpTransport::Create(options);
    if (!transport.ok()) return transport.status();
    fallback = *std::move(transport);
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
}

FailoverChannel::~FailoverChannel() = default;

void FailoverChannel::CallAsync(const std::string& method, const std::string& request,
                                absl::Time deadline, CallCallback done) {
  Impl& d = *impl_;
  ++d.calls;
  auto call = std::make_shared<PendingCall>();
  call->method = method;
  call->deadline = deadline;
  call->done = std::move(done);

  if (d.primary != nullptr) {
    call->ticket = d.breaker.AllowPrimary();
    if (!call->ticket.allowed) {
      call->breaker_refused = true;
    } else if (d.fallback != nullptr && d.primary->KnownUnavailable()) {
      // The channel already knows it cannot connect: fail over at once.
      // (Without a fallback the call is still made: it fails at once too,
      // but with the transport's reason, e.g. a refused certificate.)
      d.breaker.RecordFailure(call->ticket);
      call->result.response = absl::UnavailableError("the primary transport cannot connect");
    } else {
      // Kept for the fallback, should the primary fail.
      if (d.fallback != nullptr) call->request = request;
      // The server must accept the call within the attempt timeout; once it
      // has, the call may take until its own deadline. With nowhere to fail
      // over to, giving up early gains nothing: the whole deadline it is.
      CallOptions options;
      options.deadline = deadline;
      options.accept_deadline = d.fallback != nullptr
                                    ? std::min(deadline, absl::Now() + d.policy.attempt_timeout)
                                    : deadline;
      call->tried_primary = true;
      ++call->result.info.attempts;
      d.primary->CallAsync(method, request, options, [impl = impl_.get(), call](TransportResult r) {
        impl->OnPrimaryResult(call, std::move(r));
      });
      return;
    }
  }
  if (d.fallback != nullptr) call->request = request;
  d.TryFallback(call);
}

void FailoverChannel::Impl::OnPrimaryResult(const std::shared_ptr<PendingCall>& call,
                                            TransportResult r) {
  // An answer, or a live server that ran out of the call's own deadline:
  // neither is the primary failing, and there is no time left to fail over.
  const bool slow_but_alive =
      r.accepted && r.response.status().code() == absl::StatusCode::kDeadlineExceeded;
  if (r.response.ok() || !IsTransportFailure(r.response.status()) || slow_but_alive) {
    breaker.RecordSuccess(call->ticket);
    ++served_by_primary;
    call->result.response = std::move(r.response);
    call->result.info.served_by = primary_kind;
    call->done(std::move(call->result));
    return;
  }
  breaker.RecordFailure(call->ticket);
  call->result.response = std::move(r.response);
  TryFallback(call);
}

void FailoverChannel::Impl::TryFallback(const std::shared_ptr<PendingCall>& call) {
  CallResult& result = call->result;
  if (fallback == nullptr || closing.load()) {
    if (closing.load()) {
      result.response = absl::UnavailableError("the channel is being destroyed");
    } else if (primary == nullptr) {
      result.response = absl::UnavailableError("no transport is configured");
    } else if (call->breaker_refused) {
      result.response = absl::UnavailableError(
          "the primary transport's circuit breaker is open and there is no fallback");
    }
    call->done(std::move(result));
    return;
  }
  if (absl::Now() >= call->deadline) {
    result.response = absl::DeadlineExceededError(
        absl::StrCat("the deadline passed before the call could fail over: ",
                     result.response.status().ToString()));
    call->done(std::move(result));
    return;
  }
  if (call->tried_primary) ++failovers;
  ++result.info.attempts;
  const std::string request = std::move(call->request);
  CallOptions options;
  options.deadline = call->deadline;
  fallback->CallAsync(call->method, request, options, [this, call](TransportResult r) {
    CallResult& out = call->result;
    out.info.served_by = fallback_kind;
    if (!r.queued_id.empty()) {
      ++queued;
      out.info.queued = true;
      out.info.operation_id = r.queued_id;
    } else {
      ++served_by_fallback;
    }
    out.response = std::move(r.response);
    call->done(std::move(out));
  });
}

CallResult FailoverChannel::Call(const std::string& method, const std::string& request,
                                 absl::Time deadline) {
  internal::BlockingWait<CallResult> wait;
  CallAsync(method, request, deadline, wait.Callback());
  return wait.Take();
}

LateReply FailoverChannel::TakeLateReply(const std::string& operation_id) {
  if (impl_->fallback != nullptr) {
    LateReply reply = impl_->fallback->TakeLateReply(operation_id);
    if (reply.state != LateReply::State::kUnknown) return reply;
  }
  if (impl_->primary != nullptr) return impl_->primary->TakeLateReply(operation_id);
  return {};
}

void FailoverChannel::SetLateReplyListener(const LateReplyListener& listener) const {
  // Each transport names its own queued ids: both get the listener.
  if (impl_->primary != nullptr) impl_->primary->SetLateReplyListener(listener);
  if (impl_->fallback != nullptr) impl_->fallback->SetLateReplyListener(listener);
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
  for (const Transport* transport : {impl_->primary.get(), impl_->fallback.get()}) {
    if (transport == nullptr) continue;
    s.replies_refused += transport->replies_refused();
    s.late_replies_dropped += transport->late_replies_dropped();
    s.outbox_refused += transport->outbox_refused();
    s.resent += transport->resent();
  }
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
