#include "rpc/grpc_server.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "filemesh/service/log.hpp"
#include "google/protobuf/io/coded_stream.h"
#include "rpc/grpc_tls.h"
#include "rpc/grpc_transport.h"
#include "rpc/status_convert.h"

namespace filemesh::internal {
namespace {

constexpr char kHealthCheckMethod[] = "/grpc.health.v1.Health/Check";

// grpc.health.v1.HealthCheckResponse.ServingStatus values.
constexpr int kServing = 1;
constexpr int kNotServing = 2;

// The `service` field (1, a string) of a grpc.health.v1.HealthCheckRequest;
// false if `bytes` is not such a message.
bool ParseHealthCheckRequest(const std::string& bytes, std::string* service) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  service->clear();
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    const uint32_t field = tag >> 3;
    const uint32_t wire_type = tag & 7;
    uint32_t length = 0;
    uint64_t ignored = 0;
    if (field == 1 && wire_type == 2) {
      if (!in.ReadVarint32(&length) || !in.ReadString(service, static_cast<int>(length))) {
        return false;
      }
    } else if (wire_type == 0) {
      if (!in.ReadVarint64(&ignored)) return false;
    } else if (wire_type == 2) {
      if (!in.ReadVarint32(&length) || !in.Skip(static_cast<int>(length))) return false;
    } else if (wire_type == 1) {
      if (!in.Skip(8)) return false;
    } else if (wire_type == 5) {
      if (!in.Skip(4)) return false;
    } else {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

}  // namespace

struct GrpcServer::Impl {
  Dispatcher dispatch;
  std::set<std::string> services;  // "package.Service" names served
  // TlsOptions::allowed_peers; empty: any caller the TLS layer let in.
  std::set<std::string> allowed_peers;
  bool record_peer = false;  // GrpcServerOptions::record_peer
  // Calls refused for their certificate's names (logged sparingly).
  mutable std::atomic<uint64_t> peers_refused{0};
  std::atomic<bool> serving{true};  // false once Shutdown began
  // Counts calls whose OnDone ran. Only a ThreadSanitizer edge: each OnDone
  // adds with release, Shutdown reads with acquire once Server::Wait has
  // returned, so everything a call did (the dispatcher and the health check
  // it read included) is ordered before this Impl is destroyed. gRPC keeps
  // that order inside its uninstrumented library, where TSan cannot see it.
  mutable std::atomic<uint64_t> calls_done{0};
  std::unique_ptr<grpc::CallbackGenericService> generic;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address;

  // grpc.health.v1.Health/Check: SERVING for "" (the server) and each
  // registered service while the server runs, NOT_SERVING once it shuts
  // down, NOT_FOUND for other names (the health protocol's answers).
  absl::StatusOr<std::string> HealthCheck(const std::string& request) const {
    std::string service;
    if (!ParseHealthCheckRequest(request, &service)) {
      return absl::InvalidArgumentError("not a grpc.health.v1.HealthCheckRequest");
    }
    if (!service.empty() && services.count(service) == 0) {
      return absl::NotFoundError(absl::StrCat("unknown service \"", service, "\""));
    }
    const int status = serving.load() ? kServing : kNotServing;
    return std::string{'\x08', static_cast<char>(status)};  // field 1, varint
  }
};

namespace {

// The names of the caller's verified client certificate (its subject
// alternative names, else its common name), comma-separated; empty without
// one.
std::string PeerIdentity(const grpc::ServerContextBase& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return "";
  std::string names;
  for (const grpc::string_ref& name : auth->GetPeerIdentity()) {
    if (!names.empty()) names += ',';
    names.append(name.data(), name.size());
  }
  return names;
}

// Whether the caller's verified certificate carries one of `allowed` among
// its subject alternative names or as its common name.
bool PeerAllowed(const grpc::ServerContextBase& context, const std::set<std::string>& allowed) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return false;
  for (const char* property : {GRPC_X509_SAN_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME}) {
    for (const grpc::string_ref& name : auth->FindPropertyValues(property)) {
      if (allowed.count(std::string(name.data(), name.size())) != 0) return true;
    }
  }
  return false;
}

// One call, whatever its method, through gRPC's generic callback API (public)
// used as a unary call: one request message in, one response (or a status)
// out. The call is acknowledged at once (initial metadata): the client then
// knows this server is alive and working on it, and waits for the answer
// until its deadline instead of failing over after its attempt timeout.
class Call final : public grpc::ServerGenericBidiReactor {
 public:
  Call(const GrpcServer::Impl* server, grpc::GenericCallbackServerContext* context)
      : server_(server), context_(context) {
    // Made on one of gRPC's threads, called back on others: gRPC orders
    // them inside its uninstrumented library; this release (and the
    // acquires in the callbacks) make that order visible to ThreadSanitizer.
    handed_over_.store(true, std::memory_order_release);
    StartSendInitialMetadata();
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    (void)handed_over_.load(std::memory_order_acquire);
    HandleRequest(ok);
    // gRPC calls OnDone only after this returns (even when the reply was
    // already sent from another thread): the same edge as handed_over_.
    read_done_.store(true, std::memory_order_release);
  }

  void OnDone() override {
    (void)handed_over_.load(std::memory_order_acquire);
    (void)replied_.load(std::memory_order_acquire);
    (void)read_done_.load(std::memory_order_acquire);
    server_->calls_done.fetch_add(1, std::memory_order_acq_rel);
    delete this;
  }

 private:
  void HandleRequest(bool ok) {
    if (!ok) {  // half-closed without a message, or gone
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the call carried no request"));
      return;
    }
    std::string request = ByteBufferToString(request_);
    request_.Clear();
    const std::string& method = context_->method();
    if (!server_->allowed_peers.empty() && !PeerAllowed(*context_, server_->allowed_peers)) {
      Finish(RefusePeer());
      return;
    }
    if (method == kHealthCheckMethod) {
      Reply(server_->HealthCheck(request));
      return;
    }
    IncomingCall call;
    call.method = method;
    const auto client_deadline = context_->deadline();
    call.deadline = client_deadline == std::chrono::system_clock::time_point::max()
                        ? absl::InfiniteFuture()
                        : absl::FromChrono(client_deadline);
    if (server_->record_peer) call.peer = PeerIdentity(*context_);
    // The dispatcher answers exactly once, from any thread; the reactor
    // lives until OnDone, which comes after that answer is finished.
    server_->dispatch(std::move(call), std::move(request),
                      [this](absl::StatusOr<std::string> result) { Reply(std::move(result)); });
  }

  // The answer to a caller whose certificate names no allowed peer; logs
  // the first refusal and then every 100th.
  grpc::Status RefusePeer() {
    const std::string names = PeerIdentity(*context_);
    const std::string shown = names.empty() ? "(no certificate)" : names;
    const uint64_t refused = ++server_->peers_refused;
    if (refused == 1 || refused % 100 == 0) {
      LogEvent(LogLevel::kWarning, "tls_peer_refused",
               {{"transport", "grpc"},
                {"peer_names", shown},
                {"reason", "not an allowed peer"},
                {"count", absl::StrCat(refused)}});
    }
    return grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        absl::StrCat("this service does not take calls from the client certificate (", shown,
                     "): it names none of the service's allowed peers"));
  }

  void Reply(absl::StatusOr<std::string> result) {
    if (result.ok()) response_ = StringToByteBuffer(*result);
    // Reply may run on a handler thread, OnDone then deletes on one of
    // gRPC's: the same for ThreadSanitizer as handed_over_.
    replied_.store(true, std::memory_order_release);
    if (!result.ok()) {
      Finish(ToGrpcStatus(result.status()));
      return;
    }
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }

  const GrpcServer::Impl* const server_;
  grpc::GenericCallbackServerContext* const context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::atomic<bool> handed_over_{false};
  std::atomic<bool> replied_{false};
  std::atomic<bool> read_done_{false};
};

class GenericService final : public grpc::CallbackGenericService {
 public:
  explicit GenericService(const GrpcServer::Impl* server) : server_(server) {
    // Made on the starting thread, used on gRPC's: see Call::handed_over_.
    published_.store(true, std::memory_order_release);
  }
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    (void)published_.load(std::memory_order_acquire);
    return new Call(server_, context);
  }

 private:
  const GrpcServer::Impl* const server_;
  std::atomic<bool> published_{false};
};

}  // namespace

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const GrpcServerOptions& options,
                                                              const HandlerRegistry& registry,
                                                              Dispatcher dispatch) {
  const std::string& listen = options.listen;
  if (listen.empty() || listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("gRPC listen address \"", listen, "\" is not host:port"));
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      GrpcServerCredentials(listen, options.tls, options.insecure);
  if (!credentials.ok()) return credentials.status();
  auto impl = std::make_unique<Impl>();
  impl->dispatch = std::move(dispatch);
  impl->allowed_peers.insert(options.tls.allowed_peers.begin(), options.tls.allowed_peers.end());
  impl->record_peer = options.record_peer;
  for (const std::string& service : registry.ServiceNames()) impl->services.insert(service);
  impl->generic = std::make_unique<GenericService>(impl.get());

  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, *credentials, &impl->port);
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind a
  // port in use (and take half its connections) instead of failing.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Clients ping every second while calls are in flight, to notice a
  // server that stopped answering (GrpcTransport); allow it.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(kKeepaliveInterval) / 2));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (options.max_connection_age < absl::InfiniteDuration()) {
    const auto ms = [](absl::Duration d) {
      return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 1, INT32_MAX));
    };
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, ms(options.max_connection_age));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                               ms(options.connection_age_grace));
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_request_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  grpc::ResourceQuota quota("filemesh-grpc-server");
  quota.Resize(options.memory_quota_bytes);
  builder.SetResourceQuota(quota);
  // Every method, health checks included, goes to the one generic service.
  builder.RegisterCallbackGenericService(impl->generic.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on \"", listen, "\""));
  }
  // Unix socket addresses have no port to fill in.
  impl->address = absl::StartsWith(listen, "unix:")
                      ? listen
                      : absl::StrCat(listen.substr(0, listen.rfind(':')), ":", impl->port);
  LogEvent("grpc_listening",
           {{"address", impl->address}, {"tls", options.tls.enabled() ? "on" : "off"}});
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

int GrpcServer::port() const { return impl_->port; }

const std::string& GrpcServer::address() const { return impl_->address; }

void GrpcServer::Shutdown(absl::Duration grace) {
  if (impl_ == nullptr || impl_->server == nullptr) return;
  impl_->serving = false;
  impl_->server->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  impl_->server->Wait();
  (void)impl_->calls_done.load(std::memory_order_acquire);  // see calls_done
  impl_->server.reset();
}

}  // namespace filemesh::internal
