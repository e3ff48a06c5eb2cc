// The gRPC side of ServiceHost: every call goes to one generic callback
// service (gRPC's public generic API: bytes in, bytes out), which answers
// grpc.health.v1.Health/Check itself and hands everything else to the
// dispatcher (unknown methods are its UNIMPLEMENTED).

#ifndef FILEMESH_SRC_RPC_GRPC_SERVER_H_
#define FILEMESH_SRC_RPC_GRPC_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rpc/handler_registry.h"

namespace filemesh::internal {

class GrpcServer {
 public:
  // Binds `listen` and starts serving the registry's methods through
  // `dispatch`; logs `event=grpc_listening address=HOST:PORT`. InvalidArgument
  // for a malformed address, Unavailable when it cannot be bound. Messages
  // above `max_message_bytes` are refused both ways (RESOURCE_EXHAUSTED).
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const std::string& listen,
                                                           const HandlerRegistry& registry,
                                                           Dispatcher dispatch,
                                                           size_t max_message_bytes);
  ~GrpcServer();

  int port() const;
  // The listen address with the bound port ("127.0.0.1:0" -> "127.0.0.1:43121").
  const std::string& address() const;
  // Marks every service NOT_SERVING, then stops, waiting up to `grace` for
  // calls in flight.
  void Shutdown(absl::Duration grace);

  // Defined in the .cc; public so that its call objects can reach it.
  struct Impl;

 private:
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_GRPC_SERVER_H_
