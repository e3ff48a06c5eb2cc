// GrpcTransport: Transport over one gRPC channel with grpc::GenericStub, so
// any method works without generated stubs.

#ifndef FILEMESH_SRC_RPC_GRPC_TRANSPORT_H_
#define FILEMESH_SRC_RPC_GRPC_TRANSPORT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/transport.hpp"

namespace grpc {
class Channel;
template <class RequestType, class ResponseType>
class TemplatedGenericStub;
class ByteBuffer;
}  // namespace grpc

namespace filemesh::internal {

struct GrpcTransportOptions {
  // "host:port", any gRPC target URI ("dns:///...", "unix:..."), or several
  // "host:port" separated by commas, spread with round_robin.
  std::string target;
  absl::Duration reconnect_backoff_min = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(5);
};

// The gRPC target URI and load-balancing policy for a --*_grpc flag value.
// InvalidArgument for an empty or malformed list.
struct ResolvedTarget {
  std::string uri;
  bool round_robin = false;
};
absl::StatusOr<ResolvedTarget> ResolveGrpcTarget(const std::string& target);

class GrpcTransport final : public Transport {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcTransport>> Create(const GrpcTransportOptions& options);
  ~GrpcTransport() override;

  TransportKind kind() const override { return TransportKind::kGrpc; }
  TransportResult Call(const std::string& method, const std::string& request,
                       absl::Time deadline) override;
  // The channel is in TRANSIENT_FAILURE (and asked to reconnect).
  bool KnownUnavailable() const override;

 private:
  explicit GrpcTransport(std::shared_ptr<grpc::Channel> channel);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer>> stub_;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_GRPC_TRANSPORT_H_
