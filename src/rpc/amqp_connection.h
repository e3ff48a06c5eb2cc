// AmqpConnection: one rabbitmq-c connection driven by one I/O thread, which
// reconnects with backoff for as long as it lives.
//
// rabbitmq-c is not thread-safe, so everything that touches the connection
// runs on the I/O thread: an AmqpSession (the client or the server logic)
// gets callbacks there and calls the "I/O thread only" methods below from
// them. Other threads hand work to the session under its own lock and call
// Wake(); the loop then calls AmqpSession::OnWake.
//
// Layout on the wire: channel 1 carries consumers and acks; channel 2 only
// declares topology, so that a refused declaration (it closes its channel)
// never disturbs channel 1; publishes ride a channel of their own (3 on),
// in confirm mode, which ResetPublishChannel replaces by a fresh one.
//
// Thread safety: Start, Shutdown, Connected, Wake and LastError may be called
// from any thread; the rest only from the session's callbacks.

#ifndef FILEMESH_SRC_RPC_AMQP_CONNECTION_H_
#define FILEMESH_SRC_RPC_AMQP_CONNECTION_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/rpc/transport.hpp"
#include "filemesh/service/tls.hpp"
#include "rpc/amqp_url.h"

namespace filemesh::internal {

// The header and argument values filemesh reads and writes; other AMQP field
// kinds are ignored when read.
using AmqpValue = std::variant<int64_t, std::string>;
using AmqpTable = std::map<std::string, AmqpValue>;

// The basic.properties filemesh uses (empty string = absent).
struct AmqpProperties {
  std::string content_type;
  std::string type;
  std::string correlation_id;
  std::string reply_to;
  std::string expiration;
  // The publisher's broker user; RabbitMQ refuses a message whose user_id is
  // not the user of the connection that publishes it, so it can be believed.
  std::string user_id;
  uint8_t delivery_mode = 0;  // 0 = absent, 2 = persistent
  AmqpTable headers;
};

// A message from basic.deliver or basic.return.
struct AmqpMessage {
  // basic.deliver
  uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string consumer_tag;
  // basic.return
  int reply_code = 0;
  std::string reply_text;
  // both
  std::string exchange;
  std::string routing_key;
  AmqpProperties properties;
  std::string body;
  // The body's size as its content header declared it. Above
  // AmqpConnectionOptions::max_body_bytes the body is read off the wire and
  // dropped, never held: `body` stays empty and body_dropped is set, for the
  // session to refuse the message.
  uint64_t body_size = 0;
  bool body_dropped = false;
};

struct AmqpQueueSpec {
  std::string name;
  bool durable = true;
  AmqpTable arguments;
};

struct AmqpConnectionOptions {
  // The brokers of one cluster (at least one): the connection goes to the
  // first, and each failed attempt or lost connection moves it to the next.
  std::vector<AmqpUrl> urls;
  // With url.tls: the CA, and the client certificate if any (checked by
  // CheckEndpointOptions; read by rabbitmq-c at every connection).
  TlsOptions tls;
  // Requested heartbeat (the broker may lower it); zero disables them.
  absl::Duration heartbeat = absl::Seconds(10);
  // TCP connect, and then the AMQP handshake, each bounded by this.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Longest wait for the reply of a synchronous method (declare, consume).
  absl::Duration rpc_timeout = absl::Seconds(10);
  // Exponential backoff with full jitter between connection attempts.
  absl::Duration reconnect_backoff_min = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(5);
  // Shown in the broker's management tools.
  std::string connection_name = "filemesh";
  // "client" or "server": the `role` of this connection's log lines.
  std::string role = "client";
  // Largest message body held (the endpoints' max_message_bytes); a bigger
  // one is dropped as it arrives (AmqpMessage::body_dropped).
  size_t max_body_bytes = kDefaultMaxMessageBytes;
};

// The broker user a connection to `url` logs in as: the URL's user, or with
// EXTERNAL the common name of `tls`'s client certificate (the broker must map
// certificates to users by common name: ssl_cert_login_from = common_name).
std::string BrokerUser(const AmqpUrl& url, const TlsOptions& tls);

// The connection settings a client's or a server's options carry (heartbeat
// and connect timeout in `amqp`, reconnect backoff), for `urls`, named `name`
// in the broker's tools and logging as `role`, holding bodies of at most
// `max_body_bytes` (replies for a client, requests for a server).
template <typename EndpointOptions>
AmqpConnectionOptions ConnectionOptionsOf(const EndpointOptions& options,
                                          const std::vector<AmqpUrl>& urls, std::string name,
                                          std::string role, size_t max_body_bytes) {
  AmqpConnectionOptions out;
  out.urls = urls;
  out.tls = options.amqp.tls;
  out.heartbeat = options.amqp.heartbeat;
  out.connect_timeout = options.amqp.connect_timeout;
  out.reconnect_backoff_min = options.reconnect_backoff_min;
  out.reconnect_backoff_max = options.reconnect_backoff_max;
  out.connection_name = std::move(name);
  out.role = std::move(role);
  out.max_body_bytes = max_body_bytes;
  return out;
}

class AmqpConnection;

// The logic riding on a connection. Every method runs on the I/O thread.
class AmqpSession {
 public:
  virtual ~AmqpSession() = default;
  // A fresh connection (channels open, channel 1 in confirm mode): declare
  // topology and start consuming. An error drops the connection and retries
  // after a backoff.
  virtual absl::Status OnConnected(AmqpConnection& connection) = 0;
  // A basic.deliver with its content.
  virtual void OnDelivery(AmqpConnection& connection, AmqpMessage message) = 0;
  // A basic.return (a mandatory publish that no queue took).
  virtual void OnReturn(AmqpConnection& connection, AmqpMessage message) = 0;
  // A publisher confirm: `ack` false is a basic.nack. `multiple` covers every
  // sequence number up to `sequence`.
  virtual void OnConfirm(AmqpConnection& connection, uint64_t sequence, bool multiple,
                         bool ack) = 0;
  // Every loop round, also while disconnected (every operation then fails
  // with Unavailable, so work handed over meanwhile can be failed at once).
  virtual void OnWake(AmqpConnection& connection) = 0;
  // After a round's frames were handled (e.g. to ack a batch at once).
  virtual void OnIdle(AmqpConnection& connection) { (void)connection; }
  // connection.blocked: the broker stopped reading publishes (a memory or
  // disk alarm; `reason` is its words, e.g. "low on memory"). A publish now
  // waits until connection.unblocked, possibly with the I/O thread stuck in
  // its write. AmqpConnection::Blocked() is true until OnUnblocked or a new
  // connection.
  virtual void OnBlocked(AmqpConnection& connection, const std::string& reason) {
    (void)connection;
    (void)reason;
  }
  virtual void OnUnblocked(AmqpConnection& connection) { (void)connection; }
  // The connection is gone; sequence numbers and delivery tags of it are void.
  virtual void OnDisconnected(const absl::Status& why) = 0;
};

class AmqpConnection {
 public:
  // `session` must outlive the connection (or its Shutdown).
  AmqpConnection(AmqpConnectionOptions options, AmqpSession* session);
  ~AmqpConnection();  // Shutdown()

  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;

  // Starts the I/O thread, which connects in the background. Once.
  absl::Status Start();
  // Closes the connection (politely when it is up) and joins the I/O thread.
  // Idempotent; after it the session gets no more callbacks.
  void Shutdown();
  // The connection is up and the session's OnConnected succeeded.
  bool Connected() const { return connected_.load(std::memory_order_acquire); }
  // Between brokers: before the first attempt has ended, or since the
  // connection was lost until it is back or every broker has refused once.
  // Work may wait for the next connection meanwhile; once this is false and
  // the connection is down, the brokers are known to be unreachable.
  bool Seeking() const;
  // The broker connected to, or to be tried next, redacted (for messages).
  std::string CurrentUrl() const;
  // Makes the I/O thread call OnWake soon.
  void Wake();
  // Why the connection last went down or could not be made (for messages).
  std::string LastError() const;
  // Whether the broker has blocked this connection's publishes
  // (connection.blocked, until connection.unblocked or a new connection),
  // and the reason it gave.
  bool Blocked() const { return blocked_.load(std::memory_order_acquire); }
  std::string BlockedReason() const;

  // ---- I/O thread only ----

  // Increases with every connection made; tags and sequences belong to one.
  uint64_t generation() const { return generation_; }
  // Connected and not broken in this round.
  bool usable() const { return conn_ != nullptr && broken_.ok(); }
  // The broker user this connection logged in as (BrokerUser).
  const std::string& user() const { return user_; }

  // Publishes on the publish channel; returns the publisher-confirm sequence
  // number (from 1 on each publish channel).
  absl::StatusOr<uint64_t> Publish(std::string_view exchange, std::string_view routing_key,
                                   bool mandatory, const AmqpProperties& properties,
                                   std::string_view body);
  // Closes the publish channel and opens another in confirm mode: the
  // broker's state for the old one goes with it. Confirms of what was
  // published on it never come: the session treats those publishes as
  // lost. (RabbitMQ 3.10 nacks every publish of a channel to a quorum queue
  // whose leader was on a node that was down when the channel first
  // published to it, for the channel's life: a fresh channel is the way out
  // once a new leader is elected.) An error means the connection broke.
  absl::Status ResetPublishChannel();
  // The messages ready in `queue` (a passive queue.declare on channel 2);
  // NotFound when it does not exist. For a quorum queue whose leader is
  // unreachable RabbitMQ answers 0.
  absl::StatusOr<uint32_t> QueueMessageCount(std::string_view queue);
  // The loop goes round (OnWake) by `when` at the latest, even if nothing
  // comes (e.g. when a publish backoff ends).
  void WakeBy(absl::Time when) { wake_by_ = std::min(wake_by_, when); }

  absl::Status Ack(uint64_t delivery_tag, bool multiple);
  absl::Status Reject(uint64_t delivery_tag, bool requeue);

  // Topology (channel 2). A refusal by the broker (e.g. a queue that exists
  // with other arguments) is FailedPrecondition/NotFound/PermissionDenied
  // with the broker's text; the connection stays up.
  absl::Status DeclareExchange(std::string_view name, std::string_view type, bool durable);
  absl::Status DeclareQueue(const AmqpQueueSpec& spec);
  absl::Status BindQueue(std::string_view queue, std::string_view exchange,
                         std::string_view routing_key);

  // Consumers (channel 1). Prefetch applies to each later consumer.
  absl::Status Qos(uint16_t prefetch_count);
  // Manual acks. Returns the consumer tag.
  absl::StatusOr<std::string> Consume(std::string_view queue, bool exclusive);
  absl::Status Cancel(std::string_view consumer_tag);

 private:
  struct Inbound;  // a message being assembled from its frames

  void Run();
  // One round of the I/O loop: connect if needed, handle what came, wait.
  void RunRound(absl::Time* next_attempt);
  // An exception ended a round: log it, drop the connection, back off.
  void OnRoundFailed(const char* what, absl::Time* next_attempt);
  bool Connect();                        // false: failed, broken_ says why
  bool LogIn(const std::string& where);  // part of Connect
  void Disconnect(bool polite);
  void MarkBroken(absl::Status status);
  void DrainFrames();
  // One frame read (an amqp_frame_t*; rabbitmq-c stays out of this header),
  // by kind.
  void HandleFrame(const void* frame);
  void HandleConnectionMethod(const void* frame);
  void SetBlocked(bool blocked, std::string reason);
  void HandleChannelClose(const void* frame);
  void HandleMainChannelMethod(const void* frame);
  void HandleContentHeader(const void* frame);
  void HandleContentBody(const void* frame);
  void CompleteInbound(Inbound& in);
  void ResetInbound();
  // The message being assembled on the frame's channel (deliveries on
  // channel 1, returns on the publish channel).
  Inbound& InboundOf(const void* frame);
  absl::Status OpenPublishChannel();  // publish_channel_, confirm.select
  void ProtocolError(std::string_view what);
  // Run's steps.
  bool EnsureConnected(absl::Time* next_attempt);
  void HandleBroken(absl::Time* next_attempt);
  void PollSocket();
  absl::Status RpcStatus(std::string_view what, int channel);
  void WaitForWake(absl::Duration timeout);
  void ConsumeWake();
  absl::Duration NextBackoff();
  void SetLastError(const absl::Status& status);
  // One log line per connection event (see Run).
  void LogConnectFailed(const absl::Status& why, absl::Duration retry_in);

  AmqpConnectionOptions options_;  // const after the constructor
  AmqpSession* const session_;

  Mutex shutdown_mu_;
  std::thread thread_ ABSL_GUARDED_BY(shutdown_mu_);
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{false};
  std::atomic<bool> wake_pending_{false};
  int wake_fd_ = -1;

  // Seeking(); set false once a connection is up or every broker failed.
  std::atomic<bool> seeking_{true};
  void StopSeeking();
  // The broker of this attempt or connection (I/O thread).
  const AmqpUrl& url() const { return options_.urls[url_index_]; }
  // Moves to the next broker of the list (I/O thread).
  void MoveToNextUrl();

  mutable Mutex error_mu_;
  std::string last_error_ ABSL_GUARDED_BY(error_mu_);
  std::string blocked_reason_ ABSL_GUARDED_BY(error_mu_);
  std::string current_url_ ABSL_GUARDED_BY(error_mu_);  // url(), redacted
  std::atomic<bool> blocked_{false};
  absl::Time blocked_at_;  // I/O thread

  // I/O thread state.
  void* conn_ = nullptr;  // amqp_connection_state_t
  absl::Status broken_;
  uint64_t generation_ = 0;
  uint64_t publish_seq_ = 0;
  int heartbeat_seconds_ = 0;
  std::string user_;  // BrokerUser of options_, set by Connect
  int backoff_attempt_ = 0;
  size_t url_index_ = 0;        // options_.urls[url_index_] is url()
  size_t failed_since_up_ = 0;  // attempts failed since the last connection
  absl::Time connected_at_;
  bool read_socket_ = true;  // the socket may have data rabbitmq-c has not read
  absl::Time last_socket_read_;
  std::unique_ptr<Inbound> inbound_;         // channel 1
  std::unique_ptr<Inbound> return_inbound_;  // the publish channel
  uint16_t publish_channel_ = 3;
  absl::Time wake_by_ = absl::InfiniteFuture();  // WakeBy
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_AMQP_CONNECTION_H_
