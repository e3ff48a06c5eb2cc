// Builds the RabbitMQ transport for FailoverChannel::Create, keeping
// failover_channel.cc free of rabbitmq-c.

#ifndef FILEMESH_SRC_RPC_TRANSPORT_FACTORY_H_
#define FILEMESH_SRC_RPC_TRANSPORT_FACTORY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/rpc/transport.hpp"

namespace filemesh::internal {

absl::StatusOr<std::unique_ptr<Transport>> MakeAmqpTransport(const FailoverChannelOptions& options);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_TRANSPORT_FACTORY_H_
