// GrpcTransport: Transport over one gRPC channel that calls methods by name
// on raw bytes, so any method works without generated stubs.

#ifndef FILEMESH_SRC_RPC_GRPC_TRANSPORT_H_
#define FILEMESH_SRC_RPC_GRPC_TRANSPORT_H_

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/transport.hpp"

namespace grpc {
class Channel;
namespace internal {
class RpcMethod;
}  // namespace internal
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
  const grpc::internal::RpcMethod& MethodFor(const std::string& method);
  // Runs on keeper_: drives connection attempts while the channel is not
  // READY (see the .cc).
  void KeepConnecting();

  struct MethodEntry {
    std::string name;
    std::unique_ptr<grpc::internal::RpcMethod> rpc;
  };

  std::shared_ptr<grpc::Channel> channel_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<MethodEntry>> methods_;

  std::mutex keeper_mu_;
  std::condition_variable keeper_cv_;
  bool stopping_ = false;  // guarded by keeper_mu_
  std::thread keeper_;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_GRPC_TRANSPORT_H_
