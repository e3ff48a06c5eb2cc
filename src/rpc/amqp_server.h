// AmqpServer: serves filemesh services from their RabbitMQ queues, per
// docs/protocol.md.
//
// Each service's queue is consumed with manual acks and a prefetch limit; a
// request runs through the Dispatcher (off the I/O thread) and its reply is
// published to the request's `reply_to` with publisher confirms. The request
// is acked only once the broker confirmed the reply, so a crash or a lost
// connection at any point makes the broker deliver the request again
// (at-least-once: a handler may run twice for one request). Malformed
// requests are rejected without requeue, which dead-letters them to
// "<queue>.dlq". The server reconnects with backoff for as long as it runs.
//
// Thread safety: every method may be called from any thread.

#ifndef FILEMESH_SRC_RPC_AMQP_SERVER_H_
#define FILEMESH_SRC_RPC_AMQP_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/rpc/amqp_options.hpp"
#include "filemesh/rpc/transport.hpp"
#include "rpc/handler_registry.h"

namespace filemesh::internal {

struct AmqpServerOptions {
  // The broker, the queues' names and shape, heartbeat and connect timeout
  // (the queue settings must match the clients').
  AmqpOptions amqp;
  // Unacked requests the broker hands over at once, per service queue.
  uint16_t prefetch = 32;
  // Largest request body taken: a bigger one is dropped as it arrives (never
  // held), answered RESOURCE_EXHAUSTED and dead-lettered.
  size_t max_request_bytes = size_t{64} * 1024;
  // Bounds of the jittered exponential backoff between reconnects.
  absl::Duration reconnect_backoff_min = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(5);
  // A handler's deadline for a request without an `expiration`.
  absl::Duration default_deadline = absl::Seconds(30);
  // Full service names to serve, e.g. "filemesh.v1.FileLister".
  std::vector<std::string> services;
  // Runs a request's handler and calls `done` once, from any thread.
  Dispatcher dispatch;
};

class AmqpServer {
 public:
  // InvalidArgument for a malformed URL, no services, a malformed service
  // name, no dispatcher or a zero prefetch. Does not connect yet.
  static absl::StatusOr<std::unique_ptr<AmqpServer>> Create(const AmqpServerOptions& options);
  ~AmqpServer();  // Shutdown(absl::ZeroDuration())

  AmqpServer(const AmqpServer&) = delete;
  AmqpServer& operator=(const AmqpServer&) = delete;

  // Connects in the background (and reconnects forever, with backoff),
  // declares the queues and consumes them. FailedPrecondition if called twice.
  absl::Status Start();

  // Stops consuming (basic.cancel; requests that were already on their way
  // go back to the queue), waits up to `grace` for the requests being handled
  // to be answered and acked, then closes the connection: requests still
  // unanswered then are delivered again by the broker (to another server).
  // Idempotent.
  void Shutdown(absl::Duration grace);

  // Connected and consuming.
  bool Connected() const;
  // Why the connection last failed (for diagnostics), empty if it never did.
  std::string LastError() const;

 private:
  class Core;
  explicit AmqpServer(std::shared_ptr<Core> core);
  std::shared_ptr<Core> core_;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_AMQP_SERVER_H_
