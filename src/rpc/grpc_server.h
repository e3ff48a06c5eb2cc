// The gRPC side of ServiceHost: every call goes to one generic callback
// service (gRPC's public generic API: bytes in, bytes out), which answers
// grpc.health.v1.Health/Check itself and hands everything else to the
// dispatcher (unknown methods are its UNIMPLEMENTED).

#ifndef FILEMESH_SRC_RPC_GRPC_SERVER_H_
#define FILEMESH_SRC_RPC_GRPC_SERVER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/rpc/transport.hpp"
#include "filemesh/service/tls.hpp"
#include "rpc/handler_registry.h"

namespace filemesh::internal {

struct GrpcServerOptions {
  // "host:port" or "unix:PATH".
  std::string listen;
  // Responses above it are refused (RESOURCE_EXHAUSTED), and requests above
  // max_request_bytes, before they are held.
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  size_t max_request_bytes = size_t{64} * 1024;
  // HTTP/2 streams (calls) per connection at once.
  int max_concurrent_streams = 100;
  // The server's gRPC ResourceQuota, in bytes.
  size_t memory_quota_bytes = size_t{1} << 30;
  // TLS (grpc_tls.h). Without it, plain text on loopback only, unless
  // `insecure`.
  TlsOptions tls;
  bool insecure = false;
  // Fill IncomingCall::peer from the caller's certificate (an auth-context
  // lookup per call): on when the host logs its calls.
  bool record_peer = false;
  // Connections older than this are asked to go away (GOAWAY), after
  // `connection_age_grace` for the calls on them.
  absl::Duration max_connection_age = absl::InfiniteDuration();
  absl::Duration connection_age_grace = absl::Seconds(30);
};

class GrpcServer {
 public:
  // Binds options.listen and starts serving the registry's methods through
  // `dispatch`; logs `event=grpc_listening address=HOST:PORT tls=on|off`.
  // InvalidArgument for a malformed address, for plain text beyond loopback
  // without `insecure`, and for TLS files that cannot be used
  // (FailedPrecondition: a certificate out of date); Unavailable when the
  // address cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const GrpcServerOptions& options,
                                                           const HandlerRegistry& registry,
                                                           Dispatcher dispatch);
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
