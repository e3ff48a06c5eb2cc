// GrpcTransport: Transport over one gRPC channel that calls methods by name
// on raw bytes (gRPC's generic stub and its callback API), so any method works
// without generated stubs and no thread waits on a call.

#ifndef FILEMESH_SRC_RPC_GRPC_TRANSPORT_H_
#define FILEMESH_SRC_RPC_GRPC_TRANSPORT_H_

#include <memory>
#include <string>
#include <thread>
#include <unordered_set>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/rpc/transport.hpp"
#include "filemesh/service/tls.hpp"
#include "rpc/timer_queue.h"

namespace grpc {
class Channel;
template <class RequestType, class ResponseType>
class TemplatedGenericStub;
class ByteBuffer;
class Status;
}  // namespace grpc

namespace filemesh::internal {

// How often a client pings a server while calls are in flight, and how long
// it waits for the answer: a server that stops answering mid-call is noticed
// within their sum. Servers must permit pings this often (GrpcServer does).
inline constexpr absl::Duration kKeepaliveInterval = absl::Seconds(1);
inline constexpr absl::Duration kKeepaliveTimeout = absl::Seconds(1);

struct GrpcTransportOptions {
  // "host:port", any gRPC target URI ("dns:///...", "unix:..."), or several
  // "host:port" separated by commas, spread with round_robin.
  std::string target;
  absl::Duration reconnect_backoff_min = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(5);
  // Largest request sent and response received (RESOURCE_EXHAUSTED past it).
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  // TLS toward the server (grpc_tls.h); not enabled(): plain text.
  TlsOptions tls;
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
  // `done` runs on one of gRPC's callback threads. A call the server has not
  // acknowledged (initial metadata) by options.accept_deadline is cancelled
  // and ends Unavailable; TransportResult::accepted says whether it was.
  void CallAsync(const std::string& method, const std::string& request, const CallOptions& options,
                 TransportCallback done) override;
  // The channel is in TRANSIENT_FAILURE (and asked to reconnect).
  bool KnownUnavailable() const override;

 private:
  struct PendingCall;
  using GenericStub = grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer>;

  explicit GrpcTransport(std::shared_ptr<grpc::Channel> channel);
  // Runs on keeper_: drives connection attempts while the channel is not
  // READY (see the .cc).
  void KeepConnecting();
  // The call's end: its outcome to `done` (on gRPC's thread).
  void Finish(PendingCall* call, const grpc::Status& status);
  // The call's last event has run and it is gone.
  void CallDestroyed();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<GenericStub> stub_;
  // Accept deadlines of the calls in flight.
  TimerQueue timers_;

  // Calls in flight, cancelled and waited for by the destructor.
  Mutex calls_mu_;
  CondVar calls_cv_{&calls_mu_};
  std::unordered_set<PendingCall*> calls_ ABSL_GUARDED_BY(calls_mu_);
  // Calls not yet destroyed.
  size_t active_ ABSL_GUARDED_BY(calls_mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(calls_mu_) = false;

  Mutex keeper_mu_;
  CondVar keeper_cv_{&keeper_mu_};
  bool stopping_ ABSL_GUARDED_BY(keeper_mu_) = false;
  std::thread keeper_;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_GRPC_TRANSPORT_H_
