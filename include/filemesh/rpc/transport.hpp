// Transport: one unary call carried to a service and back.
//
// A call is a full gRPC method name ("/filemesh.v1.FileLister/List"), a
// serialized request message and a deadline; the answer is the serialized
// response message or an absl::Status. Calls are asynchronous: CallAsync
// starts one and returns, and the answer reaches a callback; Call is the
// blocking form over it. FailoverChannel composes transports;
// filemesh ships gRPC and RabbitMQ ones (created by FailoverChannel::Create)
// and an in-memory one for tests (filemesh/testing/in_memory_transport.hpp).
//
// Thread safety: every method may be called from any number of threads.

#ifndef FILEMESH_RPC_TRANSPORT_HPP_
#define FILEMESH_RPC_TRANSPORT_HPP_

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace filemesh {

// The largest serialized message, request or response, a filemesh
// transport carries by default: 16 MiB, the same on the gRPC client and
// server and checked on AMQP (FailoverChannelOptions::max_message_bytes,
// ServiceHostOptions::max_message_bytes). A larger one is
// RESOURCE_EXHAUSTED, never a failover.
inline constexpr size_t kDefaultMaxMessageBytes = size_t{16} << 20;

enum class TransportKind {
  kNone = 0,  // no transport served the call
  kGrpc,
  kAmqp,
  kInMemory,
};

// "grpc", "amqp", "in-memory" or "none": the names the REST API reports.
std::string_view TransportKindName(TransportKind kind);

struct TransportResult {
  // The serialized response, or why there is none.
  absl::StatusOr<std::string> response = absl::UnknownError("no reply");
  // The server acknowledged the call before it ended (gRPC: its initial
  // metadata came): it was alive and working on it, however long it took.
  bool accepted = false;
  // Set when the transport handed the request to durable storage (the broker
  // confirmed it) but no reply came before the deadline: `response` is then
  // DeadlineExceeded, and the reply can still arrive and be fetched with
  // Transport::TakeLateReply under this id.
  std::string queued_id;
};

// What became of a queued call.
struct LateReply {
  enum class State {
    kUnknown,  // no such id (never queued here, expired, or already taken)
    kPending,  // queued, no reply yet
    kDone,     // `response` holds the reply (taken: a second call says kUnknown)
  };
  State state = State::kUnknown;
  absl::StatusOr<std::string> response = absl::UnknownError("no reply");
};

// Receives the outcome of one call, exactly once.
using TransportCallback = std::function<void(TransportResult)>;

// Told of the reply of a queued call (one that returned a queued_id) when it
// arrives, so that the reply can be stored where other processes read it
// (the REST gateway's operations). Called on a transport thread, after the
// call's own callback has returned, at most once per reply; it must not
// block for long. Returns true when it took the reply: the transport then
// forgets it (TakeLateReply says kUnknown); false leaves it for
// TakeLateReply.
using LateReplyListener =
    std::function<bool(const std::string& queued_id, const absl::StatusOr<std::string>& response)>;

// When a call must end.
struct CallOptions {
  // The answer must come by then; past it the call ends DeadlineExceeded.
  absl::Time deadline = absl::InfiniteFuture();
  // The server must have acknowledged the call by then (gRPC: sent its
  // initial metadata, which filemesh servers do on arrival), else the call
  // ends Unavailable at once: a server that is not there or not answering
  // is told from one that is merely slow. Transports that cannot tell
  // ignore it.
  absl::Time accept_deadline = absl::InfiniteFuture();
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual TransportKind kind() const = 0;

  // Sends `request` to `method` and returns without waiting; `done` gets the
  // reply, a failure or, at the deadline, DeadlineExceeded, exactly once. A
  // status that the service returned comes back unchanged; a failure to
  // deliver is Unavailable or DeadlineExceeded. `done` runs on a thread of
  // the transport (or on the caller's, before CallAsync returns, when the
  // outcome is known at once): it must not block, and it may start new calls.
  // A transport's destructor runs every pending `done` (Unavailable) before
  // it returns, so it may not run inside one of them.
  virtual void CallAsync(const std::string& method, const std::string& request,
                         const CallOptions& options, TransportCallback done) = 0;

  // The blocking form: CallAsync with `deadline`, then waits for its outcome.
  TransportResult Call(const std::string& method, const std::string& request, absl::Time deadline);

  // True when the transport knows it cannot deliver now (a gRPC channel in
  // TRANSIENT_FAILURE, a broker connection that is down), so a caller need
  // not wait for a deadline to learn it.
  virtual bool KnownUnavailable() const { return false; }

  // Answers dropped because the transport could not believe their sender
  // (AMQP: a reply whose user_id is not a service user's).
  virtual uint64_t replies_refused() const { return 0; }

  // Late replies dropped before their TTL to stay within the transport's
  // bounds (count and bytes).
  virtual uint64_t late_replies_dropped() const { return 0; }

  // Calls refused at once because too many were waiting to be sent (AMQP:
  // FailoverChannelOptions::outbox_max_calls and outbox_max_bytes).
  virtual uint64_t outbox_refused() const { return 0; }

  // Calls sent a second time because the connection that carried them was
  // lost before the other side confirmed them (AMQP: a broker node lost).
  virtual uint64_t resent() const { return 0; }

  // The reply to a call that returned a `queued_id`, if it has arrived.
  virtual LateReply TakeLateReply(const std::string& queued_id) {
    (void)queued_id;
    return {};
  }

  // Tells `listener` of each late reply from now on (a null one: none). A
  // transport that never queues ignores it. Replaces the one before; when it
  // returns, the one before is no longer running and will not be called.
  virtual void SetLateReplyListener(const LateReplyListener& /*listener*/) {}
};

}  // namespace filemesh

#endif  // FILEMESH_RPC_TRANSPORT_HPP_
