#include "rpc/transport_factory.h"

namespace filemesh::internal {

absl::StatusOr<std::unique_ptr<Transport>> MakeAmqpTransport(const FailoverChannelOptions&) {
  return absl::UnimplementedError("the AMQP transport is not wired in yet");
}

}  // namespace filemesh::internal
