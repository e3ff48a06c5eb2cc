// gRPC credentials from TlsOptions (filemesh/service/tls.hpp), through gRPC's
// public TLS API: FileWatcherCertificateProvider re-reads the PEM files, so a
// rotated certificate is used by the next handshake without a restart.

#ifndef FILEMESH_SRC_RPC_GRPC_TLS_H_
#define FILEMESH_SRC_RPC_GRPC_TLS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "filemesh/service/tls.hpp"

namespace filemesh::internal {

// What a server on `listen` ("host:port" or "unix:...") serves with.
// With TLS enabled: the certificate and key, and with a ca_file client
// certificates verified against it (required unless
// require_peer_certificate is false). allowed_peers is GrpcServer's to check
// on each call. Without TLS: plain text, which is refused
// (InvalidArgument) on an address other than loopback or a unix socket
// unless `insecure` (then a warning is logged). Errors of CheckTlsOptions.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const std::string& listen, const TlsOptions& tls, bool insecure);

// What a client calls with: TLS when enabled (the server verified against
// ca_file, or the system's CAs, and its certificate's names checked against
// the target's host), else plain text. Errors of CheckTlsOptions.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcChannelCredentials(
    const TlsOptions& tls);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_GRPC_TLS_H_
