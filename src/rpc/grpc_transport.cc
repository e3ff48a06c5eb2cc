#include "rpc/grpc_transport.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/async_unary_call.h>
#include <netdb.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
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
  // Notice a peer that stopped answering (SIGSTOP, a dead host) between calls.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  auto channel = grpc::CreateCustomChannel(target->uri, grpc::InsecureChannelCredentials(), args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot make a gRPC channel to \"", options.target, "\""));
  }
  return std::unique_ptr<GrpcTransport>(new GrpcTransport(std::move(channel)));
}

GrpcTransport::GrpcTransport(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)) {
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
  constexpr auto kReadyCheckInterval = std::chrono::milliseconds(200);
  std::unique_lock<std::mutex> lock(keeper_mu_);
  while (!stopping_) {
    const grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) {
      keeper_cv_.wait_for(lock, kReadyCheckInterval);
      continue;
    }
    lock.unlock();
    channel_->WaitForStateChange(state, absl::ToChronoTime(absl::Now() + kWatchSlice));
    lock.lock();
  }
}

const grpc::internal::RpcMethod& GrpcTransport::MethodFor(const std::string& method) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = methods_.find(method);
  if (it == methods_.end()) {
    // The map owns the name; RpcMethod keeps a pointer to it. Registering
    // the method with the channel saves a lookup on every call.
    auto entry = std::make_unique<MethodEntry>();
    entry->name = method;
    entry->rpc = std::make_unique<grpc::internal::RpcMethod>(
        entry->name.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, channel_);
    it = methods_.emplace(method, std::move(entry)).first;
  }
  return *it->second->rpc;
}

GrpcTransport::~GrpcTransport() {
  {
    std::lock_guard<std::mutex> lock(keeper_mu_);
    stopping_ = true;
  }
  keeper_cv_.notify_all();
  keeper_.join();
}

namespace {

// A completion queue for each thread that makes calls, kept for all its
// calls. A blocking call (what generated synchronous stubs make) creates and
// destroys one per call; with 32 calling threads, keeping one made 7-11 %
// more calls per second (bench/grpc_floor.cc, `--client sync` against
// `--client sync-cq`).
class ThreadCompletionQueue {
 public:
  ThreadCompletionQueue() = default;
  ThreadCompletionQueue(const ThreadCompletionQueue&) = delete;
  ThreadCompletionQueue& operator=(const ThreadCompletionQueue&) = delete;
  ~ThreadCompletionQueue() {
    queue_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (queue_.Next(&tag, &ok)) {
    }
  }

  grpc::CompletionQueue* get() { return &queue_; }

 private:
  grpc::CompletionQueue queue_;
};

grpc::CompletionQueue* CallingThreadQueue() {
  thread_local ThreadCompletionQueue queue;
  return queue.get();
}

}  // namespace

TransportResult GrpcTransport::Call(const std::string& method, const std::string& request,
                                    absl::Time deadline) {
  TransportResult result;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  const grpc::ByteBuffer request_buffer = StringToByteBuffer(request);
  grpc::ByteBuffer response_buffer;
  grpc::Status status;
  // What a blocking call does, on this thread's own queue: the calling
  // thread drives the call, with no hand-off to another thread. The reader
  // lives in the call's arena; the unique_ptr only runs its destructor.
  grpc::CompletionQueue* queue = CallingThreadQueue();
  std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientAsyncResponseReaderHelper::Create<grpc::ByteBuffer>(
          channel_.get(), queue, MethodFor(method), &context, request_buffer));
  reader->StartCall();
  reader->Finish(&response_buffer, &status, &context);
  // Nothing else uses this thread's queue, it is shut down only when the
  // thread ends, and Finish always completes (by the call's deadline at the
  // latest): the next event is this call's. Anything else would leave the
  // call running on buffers about to be freed, so it stops the process.
  void* tag = nullptr;
  bool ok = false;
  if (!queue->Next(&tag, &ok) || tag != &context) std::abort();
  if (status.ok()) {
    result.response = ByteBufferToString(response_buffer);
  } else {
    result.response = FromGrpcStatus(status);
  }
  return result;
}

bool GrpcTransport::KnownUnavailable() const {
  return channel_->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_TRANSIENT_FAILURE;
}

}  // namespace filemesh::internal
