// ServiceHost serves handlers on gRPC and on RabbitMQ queues: register each
// typed handler once, and the same code answers on both paths.
//
//   filemesh::FileLister lister("/srv/data");
//   filemesh::ServiceHostOptions options;
//   options.grpc_listen = "0.0.0.0:50051";
//   options.amqp.url = "amqp://guest:guest@127.0.0.1:5672/";
//   filemesh::ServiceHost host(options);
//   host.AddFileLister(lister);
//   if (auto status = host.Start(); !status.ok()) { ... }
//   host.Wait();   // until Shutdown() from another thread or a signal handler
//
// On gRPC the host also answers grpc.health.v1.Health/Check (SERVING for ""
// and each registered service while the host runs, NOT_SERVING once it shuts
// down); server reflection when the program calls EnableGrpcReflection()
// (process.hpp). On AMQP it consumes one
// queue per service as docs/protocol.md describes, reconnecting with backoff
// when the broker goes away. Either transport may be left out. Start,
// shutdown and the broker connection's ups and downs are logged (log.hpp).
//
// Handlers run on the host's worker threads and may be called concurrently.
// A handler that throws answers INTERNAL; nothing a client sends can crash the
// host. Thread safety: Register/Add* before Start(); Shutdown() from any
// thread.

#ifndef FILEMESH_RPC_SERVICE_HOST_HPP_
#define FILEMESH_RPC_SERVICE_HOST_HPP_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "filemesh/file_service.hpp"
#include "filemesh/rpc/amqp_options.hpp"
#include "filemesh/rpc/methods.hpp"
#include "filemesh/service/tls.hpp"

namespace filemesh {

struct ServiceHostOptions {
  // "host:port" to listen on for gRPC ("127.0.0.1:0" picks a free port; see
  // grpc_port()). Empty: no gRPC.
  std::string grpc_listen;
  // TLS on the gRPC port (filemesh/service/tls.hpp): a certificate and key,
  // and with a CA file mutual TLS (callers must present a certificate it
  // signed, optionally naming one of allowed_peers). Files are re-read when
  // they change.
  TlsOptions grpc_tls;
  // Without grpc_tls the host serves plain text, and only on a loopback
  // address or a unix socket: any other address is refused at Start unless
  // this is set (then a warning is logged), since anyone who reaches the port
  // could list and search the whole root.
  bool insecure = false;
  // Longest a client's gRPC connection is kept: past it the host asks the
  // client to reconnect (HTTP/2 GOAWAY; calls in flight get max_call_time to
  // finish, new calls go to the new connection and none fails). Bounds how
  // long a rotated or withdrawn certificate stays in use on a connection.
  absl::Duration grpc_max_connection_age = absl::Minutes(30);
  // The RabbitMQ side (amqp_options.hpp); an empty url: no AMQP.
  AmqpOptions amqp;
  // Unacknowledged AMQP deliveries at once, per service queue.
  int amqp_prefetch = 32;
  // Bounds of the exponential, jittered backoff between broker reconnects.
  absl::Duration reconnect_backoff_min = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(5);
  // Handler threads; 0 means one per CPU the process may use (affinity mask
  // and cgroup CPU quota).
  int threads = 0;
  // Calls accepted and not yet answered, running or waiting for a handler
  // thread, on both transports together. A call past it is refused at once
  // with RESOURCE_EXHAUSTED (the REST gateway answers 503 + Retry-After).
  size_t max_inflight = 1000;
  // Longest a handler may run. Its deadline is the caller's (over gRPC the
  // call's deadline, over AMQP the run-time header; see docs/protocol.md)
  // less a reply margin of a tenth of the time left, at most 200 ms, so that
  // a truncated answer still gets back in time; and never more than this
  // after the call arrived.
  absl::Duration max_call_time = absl::Seconds(30);
  // Largest request and response message, serialized, on both transports
  // (the gRPC server's limits are set to it). A larger request is refused
  // and a larger response replaced by RESOURCE_EXHAUSTED. 1 to 2^31 - 1.
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  // Largest request taken, on both transports: requests are small (a path
  // and a pattern), so one far bigger is refused before it is held
  // (RESOURCE_EXHAUSTED; over AMQP also dead-lettered). 1 to 2^31 - 1.
  size_t max_request_bytes = size_t{64} * 1024;
  // Calls one gRPC connection may carry at once (HTTP/2
  // MAX_CONCURRENT_STREAMS); a client's further calls wait for a free stream.
  int grpc_max_concurrent_streams = 100;
  // Memory gRPC's server may use for its connections and calls (its
  // ResourceQuota); past it new calls and reads wait or are refused.
  size_t grpc_memory_quota_bytes = size_t{1} << 30;
  // Log one line per handled call (`event=call method=... transport=grpc|amqp
  // code=OK duration_ms=...`); off by default, as it costs a write per call.
  bool log_calls = false;
};

class ServiceHost {
 public:
  explicit ServiceHost(ServiceHostOptions options);
  // Shuts down (with a short grace) if still running.
  ~ServiceHost();
  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  // Registers `handler` for `method` ("/package.Service/Method"). A request
  // that does not parse as Request is answered INVALID_ARGUMENT without
  // calling the handler.
  template <typename Request, typename Response>
  void Register(const std::string& method, MethodHandler<Request, Response> handler);

  // Serves FileLister.List / FileSearcher.Search with `service`, which must
  // outlive the host.
  void AddFileLister(const FileListerInterface& service);
  void AddFileSearcher(const FileSearcherInterface& service);

  void RegisterRaw(const std::string& method, RawMethodHandler handler);

  // Starts serving. Errors: InvalidArgument (bad listen address or AMQP URL,
  // nothing registered, no transport, plain-text gRPC beyond loopback without
  // `insecure`, TLS files that cannot be read, parsed or matched),
  // FailedPrecondition (a certificate expired or not valid yet), Unavailable
  // (the gRPC port cannot be bound). The broker is connected in the
  // background: an unreachable broker is retried, not an error.
  absl::Status Start();

  // The bound gRPC port (after Start), 0 without gRPC.
  int grpc_port() const;

  // Whether the AMQP side is connected right now.
  bool amqp_connected() const;

  // Stops taking calls, lets calls in flight finish (and AMQP deliveries be
  // acknowledged) for up to `grace`, then closes. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

  // Blocks until Shutdown() has finished.
  void Wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

template <typename Request, typename Response>
void ServiceHost::Register(const std::string& method, MethodHandler<Request, Response> handler) {
  RegisterRaw(method, MakeRawHandler<Request, Response>(method, std::move(handler)));
}

}  // namespace filemesh

#endif  // FILEMESH_RPC_SERVICE_HOST_HPP_
