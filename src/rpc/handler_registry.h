// The server side's view of a service: full method name -> handler working on
// serialized messages. ServiceHost fills it; the gRPC and AMQP servers look
// methods up in it and run them through the same Dispatcher, so both
// transports serve exactly the same code.

#ifndef FILEMESH_SRC_RPC_HANDLER_REGISTRY_H_
#define FILEMESH_SRC_RPC_HANDLER_REGISTRY_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/rpc/methods.hpp"

namespace filemesh::internal {

// Parses the request, runs the typed handler, serializes the response. Must
// not throw (MakeRawHandler turns exceptions into Internal).
using RawHandler = RawMethodHandler;

// Called exactly once with the outcome of a dispatched call, from any thread.
using ReplyCallback = std::function<void(absl::StatusOr<std::string> response)>;

class HandlerRegistry {
 public:
  // `method` is "/package.Service/Method". Replaces an earlier registration.
  void Add(const std::string& method, RawHandler handler) {
    handlers_[method] = std::move(handler);
  }

  // Null if unknown.
  const RawHandler* Find(const std::string& method) const {
    auto it = handlers_.find(method);
    return it == handlers_.end() ? nullptr : &it->second;
  }

  // "package.Service" of every registered method, each once, sorted.
  std::vector<std::string> ServiceNames() const;

 private:
  std::map<std::string, RawHandler> handlers_;
};

// What a transport knows of a call besides its request bytes.
struct IncomingCall {
  std::string method;  // "/package.Service/Method"
  absl::Time deadline = absl::InfiniteFuture();
  // Who called, as the transport vouches for it: the names of a client
  // certificate gRPC verified, comma-separated (filled when the gRPC server
  // records peers: GrpcServerOptions::record_peer); over AMQP the
  // publisher's user_id, which the broker checked; empty when unknown.
  std::string peer;
};

// Runs handlers off the transport threads. Implemented by ServiceHost's
// worker pool; `done` gets the handler's result (or Unimplemented for an
// unknown method, ResourceExhausted when shutting down).
using Dispatcher = std::function<void(IncomingCall call, std::string request, ReplyCallback done)>;

// The deadline a handler gets for a call that arrived at `arrival` with the
// caller's `caller_deadline`: that less a reply margin (a tenth of the time
// left, at most 200 ms), and at most `max_call_time` after arrival.
absl::Time HandlerDeadline(absl::Time arrival, absl::Time caller_deadline,
                           absl::Duration max_call_time);

// "package.Service" from "/package.Service/Method" (empty if malformed).
std::string ServiceOfMethod(const std::string& method);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_HANDLER_REGISTRY_H_
