#include "rpc/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/codegen/server_callback_handlers.h>
#include <grpcpp/impl/service_type.h>

#include <deque>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "filemesh/log.hpp"
#include "rpc/grpc_transport.h"
#include "rpc/status_convert.h"

namespace filemesh::internal {
namespace {

// One service's methods as raw callback methods. The method names must stay
// alive as long as the service: gRPC keeps pointers to them.
class RawService final : public grpc::Service {
 public:
  RawService(const std::vector<std::string>& methods, const Dispatcher* dispatch)
      : dispatch_(dispatch) {
    for (const std::string& method : methods) {
      names_.push_back(method);
      const std::string* name = &names_.back();
      AddMethod(new grpc::internal::RpcServiceMethod(
          name->c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
      MarkMethodRawCallback(
          static_cast<int>(names_.size() - 1),
          new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
              [this, name](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                           grpc::ByteBuffer* response) {
                return Handle(*name, context, request, response);
              }));
    }
  }

 private:
  grpc::ServerUnaryReactor* Handle(const std::string& method, grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    // Acknowledge the call at once: the client then knows this server is
    // alive and working on it, and waits for the answer until its deadline
    // instead of failing over after its attempt timeout.
    reactor->StartSendInitialMetadata();
    const auto client_deadline = context->deadline();
    const absl::Time deadline = client_deadline == std::chrono::system_clock::time_point::max()
                                    ? absl::InfiniteFuture()
                                    : absl::FromChrono(client_deadline);
    (*dispatch_)(method, ByteBufferToString(*request), deadline,
                 [reactor, response](absl::StatusOr<std::string> result) {
                   if (result.ok()) {
                     *response = StringToByteBuffer(*result);
                     reactor->Finish(grpc::Status::OK);
                   } else {
                     reactor->Finish(ToGrpcStatus(result.status()));
                   }
                 });
    return reactor;
  }

  const Dispatcher* dispatch_;
  std::deque<std::string> names_;
};

}  // namespace

struct GrpcServer::Impl {
  Dispatcher dispatch;
  std::vector<std::unique_ptr<RawService>> services;
  std::vector<std::string> service_names;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address;
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const std::string& listen,
                                                              const HandlerRegistry& registry,
                                                              Dispatcher dispatch,
                                                              size_t max_message_bytes) {
  if (listen.empty() || listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("gRPC listen address \"", listen, "\" is not host:port"));
  }
  auto impl = std::make_unique<Impl>();
  impl->dispatch = std::move(dispatch);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &impl->port);
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind a
  // port in use (and take half its connections) instead of failing.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Clients ping every second while calls are in flight, to notice a
  // server that stopped answering (GrpcTransport); allow it.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(kKeepaliveInterval) / 2));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(max_message_bytes));
  for (const std::string& service : registry.ServiceNames()) {
    impl->services.push_back(
        std::make_unique<RawService>(registry.MethodsOf(service), &impl->dispatch));
    impl->service_names.push_back(service);
    builder.RegisterService(impl->services.back().get());
  }
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on \"", listen, "\""));
  }
  if (auto* health = impl->server->GetHealthCheckService()) {
    health->SetServingStatus(true);
    for (const std::string& name : impl->service_names) health->SetServingStatus(name, true);
  }
  // Unix socket addresses have no port to fill in.
  impl->address = absl::StartsWith(listen, "unix:")
                      ? listen
                      : absl::StrCat(listen.substr(0, listen.rfind(':')), ":", impl->port);
  LogEvent("grpc_listening", {{"address", impl->address}});
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

int GrpcServer::port() const { return impl_->port; }

const std::string& GrpcServer::address() const { return impl_->address; }

void GrpcServer::Shutdown(absl::Duration grace) {
  if (impl_ == nullptr || impl_->server == nullptr) return;
  if (auto* health = impl_->server->GetHealthCheckService()) health->SetServingStatus(false);
  impl_->server->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  impl_->server->Wait();
  impl_->server.reset();
}

}  // namespace filemesh::internal
