#include "filemesh/rpc/transport.hpp"

#include "base/blocking_wait.h"

namespace filemesh {

std::string_view TransportKindName(TransportKind kind) {
  switch (kind) {
    case TransportKind::kGrpc:
      return "grpc";
    case TransportKind::kAmqp:
      return "amqp";
    case TransportKind::kInMemory:
      return "in-memory";
    case TransportKind::kNone:
      break;
  }
  return "none";
}

TransportResult Transport::Call(const std::string& method, const std::string& request,
                                absl::Time deadline) {
  internal::BlockingWait<TransportResult> wait;
  CallOptions options;
  options.deadline = deadline;
  CallAsync(method, request, options, wait.Callback());
  return wait.Take();
}

}  // namespace filemesh
