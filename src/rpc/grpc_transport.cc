#include "rpc/grpc_transport.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "rpc/grpc_tls.h"
#include "rpc/message_limits.h"
#include "rpc/status_convert.h"

namespace filemesh::internal {

std::string ByteBufferToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

grpc::ByteBuffer StringToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

namespace {

// Splits "host:port" / "[v6]:port"; false if malformed.
bool SplitHostPort(const std::string& hp, std::string* host, std::string* port) {
  if (!hp.empty() && hp.front() == '[') {
    const size_t close = hp.find(']');
    if (close == std::string::npos || close + 1 >= hp.size() || hp[close + 1] != ':') return false;
    *host = hp.substr(1, close - 1);
    *port = hp.substr(close + 2);
  } else {
    const size_t colon = hp.rfind(':');
    if (colon == std::string::npos || hp.find(':') != colon) return false;
    *host = hp.substr(0, colon);
    *port = hp.substr(colon + 1);
  }
  int number;
  return !host->empty() && absl::SimpleAtoi(*port, &number) && number > 0 && number < 65536;
}

}  // namespace

absl::StatusOr<ResolvedTarget> ResolveGrpcTarget(const std::string& target) {
  if (target.empty()) return absl::InvalidArgumentError("gRPC target is empty");
  if (target.find(',') == std::string::npos) return ResolvedTarget{target, false};

  // Several host:port: resolve each now, and let round_robin spread calls
  // over the addresses (gRPC's ipv4:/ipv6: schemes take address lists).
  std::vector<std::string> v4, v6;
  for (absl::string_view part : absl::StrSplit(target, ',')) {
    const std::string hp(absl::StripAsciiWhitespace(part));
    std::string host, port;
    if (!SplitHostPort(hp, &host, &port)) {
      return absl::InvalidArgumentError(
          absl::StrCat("gRPC target \"", hp, "\" is not host:port (in \"", target, "\")"));
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot resolve gRPC target \"", hp, "\""));
    }
    char name[NI_MAXHOST];
    const bool ipv6 = found->ai_family == AF_INET6;
    const int rc = getnameinfo(found->ai_addr, found->ai_addrlen, name, sizeof(name), nullptr, 0,
                               NI_NUMERICHOST);
    freeaddrinfo(found);
    if (rc != 0) return absl::InvalidArgumentError(absl::StrCat("cannot resolve \"", hp, "\""));
    if (ipv6) {
      v6.push_back(absl::StrCat("[", name, "]:", port));
    } else {
      v4.push_back(absl::StrCat(name, ":", port));
    }
  }
  if (!v4.empty() && !v6.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("gRPC targets \"", target, "\" mix IPv4 and IPv6 addresses"));
  }
  return ResolvedTarget{v4.empty() ? absl::StrCat("ipv6:", absl::StrJoin(v6, ","))
                                   : absl::StrCat("ipv4:", absl::StrJoin(v4, ",")),
                        true};
}

namespace {

// gRPC says only "Socket closed" when a server ends the connection during
// the handshake: what a TLS server does to a plain-text caller, and (TLS 1.3)
// to a client certificate it refuses. Say so, since the client cannot tell
// which; the server's log names the reason.
absl::Status ExplainConnectFailure(absl::Status status) {
  if (status.code() != absl::StatusCode::kUnavailable ||
      !absl::StrContains(status.message(), "failed to connect") ||
      !absl::StrContains(status.message(), "Socket closed")) {
    return status;
  }
  return absl::UnavailableError(absl::StrCat(
      status.message(),
      " (the server closed the connection while connecting: it may require TLS, or refuse this "
      "client's certificate; its log says why)"));
}

}  // namespace

// Least time one connection attempt may take (see GRPC_ARG_MIN_RECONNECT_BACKOFF_MS below).
constexpr absl::Duration kMinConnectTimeout = absl::Seconds(5);

absl::StatusOr<std::unique_ptr<GrpcTransport>> GrpcTransport::Create(
    const GrpcTransportOptions& options) {
  absl::StatusOr<ResolvedTarget> target = ResolveGrpcTarget(options.target);
  if (!target.ok()) return target.status();
  grpc::ChannelArguments args;
  if (target->round_robin) args.SetLoadBalancingPolicyName("round_robin");
  const auto ms = [](absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); };
  // Reconnect quickly once a server is back: the breaker's probe must find a
  // ready channel, not one waiting out gRPC's default 1 s..120 s backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, ms(options.reconnect_backoff_min));
  // Despite its name, gRPC core reads GRPC_ARG_MIN_RECONNECT_BACKOFF_MS as the
  // least time a connection attempt (TCP + HTTP/2 handshake) is given. Tying
  // it to the reconnect backoff made a handshake slower than ~100 ms fail
  // forever; a stalled peer is the attempt deadline's business, not this.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, ms(kMinConnectTimeout));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, ms(options.reconnect_backoff_max));
  // Notice within 2 s a peer that stops answering (SIGSTOP, a dead host)
  // while calls are in flight: a ping every second, each answered within a
  // second, however long no data has come (filemesh servers permit it).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(kKeepaliveInterval)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              static_cast<int>(absl::ToInt64Milliseconds(kKeepaliveTimeout)));
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  if (absl::Status size = CheckMaxMessageBytes(options.max_message_bytes); !size.ok()) {
    return size;
  }
  args.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      GrpcChannelCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  if (!options.tls.server_name.empty()) args.SetSslTargetNameOverride(options.tls.server_name);
  auto channel = grpc::CreateCustomChannel(target->uri, *credentials, args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot make a gRPC channel to \"", options.target, "\""));
  }
  return std::unique_ptr<GrpcTransport>(new GrpcTransport(std::move(channel)));
}

GrpcTransport::GrpcTransport(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)), stub_(std::make_unique<GenericStub>(channel_)) {
  channel_->GetState(/*try_to_connect=*/true);
  keeper_ = std::thread([this] { KeepConnecting(); });
}

// gRPC advances a connection attempt only while some thread polls the
// channel: a call in flight, a state watch, or its backup poller every 5 s.
// Between calls (breaker open, a server restarting) nobody would, so the
// channel stayed in TRANSIENT_FAILURE for seconds after its server was back
// and every breaker probe failed at once on KnownUnavailable(). Watching the
// state while the channel is not READY drives the attempts; a READY channel
// is only checked now and then, so calls never share their poller with this.
void GrpcTransport::KeepConnecting() {
  constexpr absl::Duration kWatchSlice = absl::Milliseconds(50);
  constexpr absl::Duration kReadyCheckInterval = absl::Milliseconds(200);
  keeper_mu_.Lock();
  while (!stopping_) {
    const grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) {
      keeper_cv_.WaitUntil(absl::Now() + kReadyCheckInterval);
      continue;
    }
    keeper_mu_.Unlock();
    channel_->WaitForStateChange(state, absl::ToChronoTime(absl::Now() + kWatchSlice));
    keeper_mu_.Lock();
  }
  keeper_mu_.Unlock();
}

// One call: a unary reactor of gRPC's callback API, alive from CallAsync
// until both its end (OnDone) and its accept timer are done with.
struct GrpcTransport::PendingCall final : public grpc::ClientUnaryReactor {
  enum Acceptance : int { kWaiting, kAccepted, kTimedOut };

  GrpcTransport* transport = nullptr;
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  TransportCallback done;
  // kWaiting until the server's initial metadata comes (kAccepted) or the
  // accept deadline passes first (kTimedOut, and the call is cancelled).
  std::atomic<int> acceptance{kWaiting};
  uint64_t accept_timer = 0;  // 0: none
  // OnDone, and the accept timer's end (run or cancelled) when there is
  // one: the last of them deletes the call.
  std::atomic<int> events_left{1};
  // Stored (release) by the calling thread just before gRPC takes the call,
  // loaded (acquire) first thing by every callback on gRPC's threads. gRPC
  // orders them itself, inside its uninstrumented library; this pair makes
  // that order visible to ThreadSanitizer, and costs nothing on x86.
  std::atomic<bool> handed_over{false};

  void OnReadInitialMetadataDone(bool ok) override {
    (void)handed_over.load(std::memory_order_acquire);
    int waiting = kWaiting;
    // OnDone is still to come (gRPC calls it last): this never deletes.
    if (ok && acceptance.compare_exchange_strong(waiting, kAccepted) && CancelAcceptTimer()) {
      EventsDone(1);
    }
  }

  // On the transport's timer thread.
  void OnAcceptTimeout() {
    int waiting = kWaiting;
    if (acceptance.compare_exchange_strong(waiting, kTimedOut)) context.TryCancel();
    EventsDone(1);
  }

  void OnDone(const grpc::Status& status) override {
    (void)handed_over.load(std::memory_order_acquire);
    const bool timer_cancelled = CancelAcceptTimer();
    transport->Finish(this, status);
    EventsDone(timer_cancelled ? 2 : 1);
  }

  // True when the accept timer was pending and now never runs (its event is
  // then done with); a timer that ran (or runs) ends in OnAcceptTimeout.
  bool CancelAcceptTimer() { return accept_timer != 0 && transport->timers_.Cancel(accept_timer); }

  void EventsDone(int n) {
    if (events_left.fetch_sub(n, std::memory_order_acq_rel) != n) return;
    GrpcTransport* owner = transport;
    // Destroyed (its ClientContext too) before the transport's destructor,
    // which waits for active_ to reach zero, may go on.
    delete this;
    owner->CallDestroyed();
  }
};

GrpcTransport::~GrpcTransport() {
  {
    // Every call in flight ends now (CANCELLED, seen as Unavailable) and its
    // callback runs before the transport goes.
    MutexLock lock(&calls_mu_);
    closing_ = true;
    for (PendingCall* call : calls_) call->context.TryCancel();
    while (active_ != 0) calls_cv_.Wait();
  }
  {
    MutexLock lock(&keeper_mu_);
    stopping_ = true;
  }
  keeper_cv_.SignalAll();
  keeper_.join();
}

void GrpcTransport::CallAsync(const std::string& method, const std::string& request,
                              const CallOptions& options, TransportCallback done) {
  auto call = std::make_unique<PendingCall>();
  call->transport = this;
  call->context.set_deadline(absl::ToChronoTime(options.deadline));
  call->request = StringToByteBuffer(request);
  call->done = std::move(done);
  {
    MutexLock lock(&calls_mu_);
    if (closing_) {
      TransportResult result;
      result.response = absl::UnavailableError("the gRPC transport is shutting down");
      call->done(std::move(result));
      return;
    }
    calls_.insert(call.get());
    ++active_;
  }
  PendingCall* raw = call.release();
  stub_->PrepareUnaryCall(&raw->context, method, grpc::StubOptions(), &raw->request, &raw->response,
                          raw);
  // Past the accept deadline a call the server has not acknowledged is
  // cancelled (and ends Unavailable); past the deadline gRPC ends it.
  if (options.accept_deadline < options.deadline) {
    raw->events_left.store(2);
    raw->accept_timer =
        timers_.Schedule(options.accept_deadline, [raw] { raw->OnAcceptTimeout(); });
  }
  raw->handed_over.store(true, std::memory_order_release);
  raw->StartCall();
}

void GrpcTransport::Finish(PendingCall* call, const grpc::Status& status) {
  {
    MutexLock lock(&calls_mu_);
    calls_.erase(call);
  }
  TransportResult result;
  const int acceptance = call->acceptance.load();
  result.accepted = acceptance == PendingCall::kAccepted;
  if (status.ok()) {
    result.response = ByteBufferToString(call->response);
  } else if (acceptance == PendingCall::kTimedOut &&
             status.error_code() == grpc::StatusCode::CANCELLED) {
    result.response = absl::UnavailableError(
        "the server did not acknowledge the call within the attempt timeout");
  } else {
    result.response = ExplainConnectFailure(FromGrpcStatus(status));
  }
  call->done(std::move(result));
}

void GrpcTransport::CallDestroyed() {
  MutexLock lock(&calls_mu_);
  if (--active_ == 0 && closing_) calls_cv_.SignalAll();
}

bool GrpcTransport::KnownUnavailable() const {
  return channel_->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_TRANSIENT_FAILURE;
}

}  // namespace filemesh::internal
