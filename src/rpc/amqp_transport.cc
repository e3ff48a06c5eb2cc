#include "rpc/amqp_transport.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/random_id.h"
#include "base/worker_pool.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/service/log.hpp"
#include "rpc/amqp_connection.h"
#include "rpc/amqp_envelope.h"
#include "rpc/amqp_url.h"
#include "rpc/handler_registry.h"
#include "rpc/message_limits.h"
#include "rpc/timer_queue.h"

namespace filemesh::internal {
namespace {

// The shortest life of the reply queue once nobody consumes it.
constexpr absl::Duration kMinReplyQueueExpiry = absl::Seconds(10);

// With share_orphan_replies, the reply queue outlives its client by this much
// beyond the last reply's move to the orphan queue (a reply that comes while
// the request runs, the broker's expiry sweep).
constexpr absl::Duration kOrphanMoveMargin = absl::Minutes(1);

// FailoverChannelOptions::callback_threads at most.
constexpr int kMaxCallbackThreads = 64;

// After a publish channel was replaced (a quorum queue nacked a request it
// had room for), publishing waits this long, doubling up to the maximum
// until the broker confirms again.
constexpr absl::Duration kMinPublishBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxPublishBackoff = absl::Seconds(2);

struct PendingCall {
  enum class State {
    kOutbox,     // waiting for the I/O thread
    kInFlight,   // published (or being published), not confirmed
    kConfirmed,  // the broker has it
    kDone,       // `result` is final
  };
  std::string id;
  std::string queue;
  std::string method;
  std::string request;
  // Counted in Core::outbox_calls_ and outbox_bytes_ (request_bytes) until
  // the broker confirms it or it ends.
  bool in_outbox = false;
  size_t request_bytes = 0;
  // Its key in Core::outbox_ while kOutbox.
  uint64_t outbox_key = 0;
  State state = State::kOutbox;
  // Published once already, on a connection lost before the broker confirmed
  // it: a second loss fails it.
  bool resent = false;
  // The caller left with a queued id: the outcome waits for TakeLateReply
  // until `expires`.
  bool late = false;
  absl::Time expires;
  // The caller's callback, given the queued id, has returned: from then on
  // the late-reply listener may be told of the reply.
  bool answered = false;
  // When the caller is answered, at the latest.
  absl::Time deadline;
  // The caller's callback until it has been handed the outcome.
  TransportCallback done;
  // Its timer in Core::timers_ while the caller waits with a deadline; 0: none.
  uint64_t deadline_timer = 0;
  absl::StatusOr<std::string> result = absl::UnknownError("no reply");
  // What `result` holds, counted in Core::late_bytes_ while the call is late.
  size_t result_bytes = 0;
};

using CallPtr = std::shared_ptr<PendingCall>;

// A callback and what to give it, run on a callback thread: `result`, or
// what ReplyOutcome reads from `reply`.
struct Delivery {
  TransportCallback done;
  TransportResult result;
  std::optional<AmqpMessage> reply;
  // Set when `result` is a queued id: its call, for AnsweredQueued.
  CallPtr queued;
};

// AmqpOptions::service_users, or the client's own broker user (the same on
// every broker of the list: ParseAmqpUrls).
std::vector<std::string> ServiceUsers(const FailoverChannelOptions& options, const AmqpUrl& url) {
  if (!options.amqp.service_users.empty()) return options.amqp.service_users;
  return {BrokerUser(url, options.amqp.tls)};
}

}  // namespace

class AmqpTransport::Core : public AmqpSession {
 public:
  Core(const FailoverChannelOptions& options, const std::vector<AmqpUrl>& urls)
      : options_(options),
        brokers_(RedactedUrls(urls)),
        quorum_(UsesQuorumQueues(options.amqp, urls.size())),
        client_id_(RandomHexId()),
        reply_queue_(absl::StrCat(options.amqp.queue_prefix, kReplyQueueInfix, client_id_)),
        orphan_queue_(options.share_orphan_replies
                          ? absl::StrCat(options.amqp.queue_prefix, kOrphanReplyQueue)
                          : std::string()),
        expiration_(ExpirationMillis(options.late_reply_ttl)),
        service_users_(ServiceUsers(options, urls.front())),
        callbacks_(std::make_unique<WorkerPool>(options.callback_threads,
                                                std::max<size_t>(options.outbox_max_calls, 1))),
        connection_(ConnectionOptionsOf(options, urls, absl::StrCat("filemesh client ", client_id_),
                                        "client", options.max_message_bytes),
                    this) {}

  ~Core() override {
    {
      MutexLock lock(&mu_);
      shutting_down_ = true;  // calls made from here on fail at once
    }
    connection_.Shutdown();
    timers_.reset();  // no deadline runs from here on
    {
      MutexLock lock(&mu_);
      std::vector<CallPtr> all;
      for (auto& [id, call] : calls_) all.push_back(call);
      for (CallPtr& call : all) Finish(call, absl::UnavailableError("AMQP transport shut down"));
    }
    DeliverReady();
    callbacks_->Stop();  // runs what was handed to it
  }

  absl::Status Start() { return connection_.Start(); }
  bool Connected() const { return connection_.Connected(); }
  const std::string& reply_queue() const { return reply_queue_; }
  uint64_t replies_refused() const { return replies_refused_.load(); }
  uint64_t late_replies_dropped() const { return late_dropped_.load(); }
  uint64_t outbox_refused() const { return outbox_refused_.load(); }
  uint64_t resent() const { return resent_.load(); }
  uint64_t orphan_replies() const { return orphans_.load(); }
  // Not connected (calls made while it seeks a broker wait for one, but
  // readiness says what is), or blocked.
  bool KnownUnavailable() const { return !connection_.Connected() || connection_.Blocked(); }

  void CallAsync(const std::string& method, const std::string& request, absl::Time deadline,
                 TransportCallback done);
  LateReply TakeLateReply(const std::string& id);
  void SetLateReplyListener(LateReplyListener listener) {
    MutexLock lock(&listener_mu_);
    listener_ = std::move(listener);
  }

  // AmqpSession (I/O thread).
  absl::Status OnConnected(AmqpConnection& connection) override;
  void OnDelivery(AmqpConnection& connection, AmqpMessage message) override;
  void OnReturn(AmqpConnection& connection, AmqpMessage message) override;
  void OnConfirm(AmqpConnection& connection, uint64_t sequence, bool multiple, bool ack) override;
  void OnWake(AmqpConnection& connection) override;
  void OnIdle(AmqpConnection& connection) override;
  void OnBlocked(AmqpConnection& connection, const std::string& reason) override;
  void OnDisconnected(const absl::Status& why) override;

 private:
  // Whether a reply's user_id (checked by the broker against the publishing
  // connection's user) is a service user's; counts and logs those that are
  // not (the first, then every 100th: a flood must not flood the log).
  bool Believed(const AmqpMessage& message) {
    const std::string& user = message.properties.user_id;
    if (std::find(service_users_.begin(), service_users_.end(), user) != service_users_.end()) {
      return true;
    }
    const uint64_t refused = ++replies_refused_;
    if (refused == 1 || refused % 100 == 0) {
      LogEvent(LogLevel::kWarning, "amqp_reply_refused",
               {{"queue", reply_queue_},
                {"user_id", user.empty() ? std::string_view("(none)") : std::string_view(user)},
                {"reason", "not from a service user"},
                {"count", absl::StrCat(refused)}});
    }
    return false;
  }

  absl::Status NotConnected() const {
    std::string why = connection_.LastError();
    return absl::UnavailableError(
        absl::StrCat("AMQP broker ", brokers_, " not connected", why.empty() ? "" : ": ", why));
  }

  // Why calls fail while the broker blocks publishing.
  absl::Status BlockedStatus() const {
    return absl::UnavailableError(absl::StrCat(
        "the AMQP broker ", connection_.CurrentUrl(), " blocked publishing (connection.blocked: ",
        connection_.BlockedReason(), "); calls fail at once until it unblocks"));
  }

  // Makes `call` final and answers its caller (or files it for
  // TakeLateReply). The answer waits in ready_ for DeliverReady().
  void Finish(const CallPtr& call, absl::StatusOr<std::string> result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finish with a reply, which a callback thread reads when a caller waits.
  void FinishWithReply(const CallPtr& call, AmqpMessage reply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finish's first half: `call` is done. Returns its caller's callback (the
  // call is then forgotten: `call` may refer to what it erased), or null
  // when nobody waits (the outcome is then for FileResult).
  TransportCallback Settle(const CallPtr& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps the outcome of a call nobody waits for (for TakeLateReply).
  void FileResult(const CallPtr& call, absl::StatusOr<std::string> result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `call` no longer counts against the outbox bounds.
  void LeaveOutbox(PendingCall& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts a published call back in the outbox, to be published again.
  void Requeue(const CallPtr& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The requests quorum queues nacked (I/O thread): failed when their queue
  // is full, else published again on a fresh publish channel after a
  // backoff (see AmqpConnection::ResetPublishChannel).
  void HandleNacked(AmqpConnection& connection);
  // Fails every call in the outbox and those `in_flight` with `status`.
  void FailUnconfirmed(const absl::Status& status, const std::map<uint64_t, CallPtr>& in_flight)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RememberLate(const CallPtr& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SweepLate(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers the caller of a call whose deadline came first.
  void Expire(const CallPtr& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands the answers Finish and Expire left to the callback threads;
  // called without the lock.
  void DeliverReady();
  // The caller of queued `call` has been answered: its reply, should it have
  // come already, goes to the listener now.
  void AnsweredQueued(const CallPtr& call);
  // Tells the listener of late call `id`'s reply, and forgets the reply when
  // the listener takes it. Without mu_.
  void NotifyLate(const std::string& id);
  // Gives the listener a reply from the orphan queue for another client's
  // call (callback thread).
  void NotifyOrphan(AmqpMessage message);
  absl::Status EnsureDeclared(AmqpConnection& connection, const std::string& queue);

  const FailoverChannelOptions options_;
  const std::string brokers_;  // the URL list, redacted
  const bool quorum_;          // UsesQuorumQueues
  const std::string client_id_;
  const std::string reply_queue_;
  // kOrphanReplyQueue with the prefix; empty without share_orphan_replies.
  const std::string orphan_queue_;
  const std::string expiration_;
  // The broker users whose replies are believed (their user_id).
  const std::vector<std::string> service_users_;
  std::atomic<uint64_t> replies_refused_{0};
  std::atomic<uint64_t> outbox_refused_{0};
  std::atomic<uint64_t> resent_{0};
  std::atomic<uint64_t> orphans_{0};

  Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // Waiting and late calls.
  std::unordered_map<std::string, CallPtr> calls_ ABSL_GUARDED_BY(mu_);
  // Calls waiting for the I/O thread, in order (PendingCall::outbox_key).
  std::map<uint64_t, CallPtr> outbox_ ABSL_GUARDED_BY(mu_);
  uint64_t next_outbox_key_ ABSL_GUARDED_BY(mu_) = 0;
  // Calls counted against the outbox bounds (PendingCall::in_outbox).
  size_t outbox_calls_ ABSL_GUARDED_BY(mu_) = 0;
  size_t outbox_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Late calls by expiry.
  std::deque<std::pair<absl::Time, std::string>> late_order_ ABSL_GUARDED_BY(mu_);
  size_t late_count_ ABSL_GUARDED_BY(mu_) = 0;
  // The bytes of the late calls' results (PendingCall::result_bytes).
  size_t late_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> late_dropped_{0};
  std::vector<Delivery> ready_ ABSL_GUARDED_BY(mu_);
  // Late calls whose reply came after their caller was answered, for
  // NotifyLate (by DeliverReady).
  std::vector<std::string> late_notify_ ABSL_GUARDED_BY(mu_);
  // Held while the listener runs, so that SetLateReplyListener returns once
  // the one before is done. Taken before mu_, never after.
  Mutex listener_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  LateReplyListener listener_ ABSL_GUARDED_BY(listener_mu_);
  // The deadlines of calls whose caller waits; reset first by ~Core.
  std::unique_ptr<TimerQueue> timers_ = std::make_unique<TimerQueue>();
  // Where replies are read and callbacks run (never the I/O thread, unless
  // its queue is full).
  std::unique_ptr<WorkerPool> callbacks_;

  // I/O thread only.
  std::map<uint64_t, CallPtr> unconfirmed_;  // by publish sequence
  std::vector<CallPtr> nacked_;              // for HandleNacked
  absl::Time publish_hold_until_;            // no publishing before it
  absl::Duration publish_backoff_ = kMinPublishBackoff;
  std::set<std::string> declared_;      // on this connection
  std::set<std::string> known_queues_;  // ever used, redeclared on reconnect
  std::string orphan_tag_;              // the consumer of orphan_queue_
  uint64_t reply_tag_seen_ = 0;
  uint64_t reply_tag_acked_ = 0;

  AmqpConnection connection_;  // last: its thread uses everything above
};

TransportCallback AmqpTransport::Core::Settle(const CallPtr& call) {
  LeaveOutbox(*call);
  call->state = PendingCall::State::kDone;
  call->request.clear();
  if (!call->done) return nullptr;
  // The caller still waits: the outcome is theirs.
  TransportCallback done = std::move(call->done);
  call->done = nullptr;
  if (call->deadline_timer != 0 && timers_ != nullptr) timers_->Cancel(call->deadline_timer);
  call->deadline_timer = 0;
  // Last: `call` may be the entry this erases (the key is copied first).
  calls_.erase(std::string(call->id));
  return done;
}

void AmqpTransport::Core::Finish(const CallPtr& call, absl::StatusOr<std::string> result) {
  if (call->state == PendingCall::State::kDone) return;
  if (TransportCallback done = Settle(call)) {
    Delivery delivery;
    delivery.done = std::move(done);
    delivery.result.response = std::move(result);
    ready_.push_back(std::move(delivery));
    return;
  }
  FileResult(call, std::move(result));
}

void AmqpTransport::Core::FinishWithReply(const CallPtr& call, AmqpMessage reply) {
  if (call->state == PendingCall::State::kDone) return;
  if (TransportCallback done = Settle(call)) {
    Delivery delivery;
    delivery.done = std::move(done);
    delivery.reply = std::move(reply);
    ready_.push_back(std::move(delivery));
    return;
  }
  FileResult(call, ReplyOutcome(std::move(reply)));
}

void AmqpTransport::Core::FileResult(const CallPtr& call, absl::StatusOr<std::string> result) {
  call->result_bytes = result.ok() ? result->size() : result.status().message().size();
  call->result = std::move(result);
  if (call->late) {
    // Keep the reply for a full TTL from its arrival, within the bounds.
    call->expires = absl::Now() + options_.late_reply_ttl;
    late_order_.emplace_back(call->expires, call->id);
    late_bytes_ += call->result_bytes;
    // (Not the "shut down" a closing transport files: no reply came.)
    if (call->answered && !shutting_down_) late_notify_.push_back(call->id);
    SweepLate(absl::Now());  // last: it may erase the entry `call` refers to
  }
}

void AmqpTransport::Core::LeaveOutbox(PendingCall& call) {
  if (call.state == PendingCall::State::kOutbox && call.outbox_key != 0) {
    outbox_.erase(call.outbox_key);
    call.outbox_key = 0;
  }
  if (!call.in_outbox) return;
  call.in_outbox = false;
  --outbox_calls_;
  outbox_bytes_ -= call.request_bytes;
}

void AmqpTransport::Core::Requeue(const CallPtr& call) {
  call->state = PendingCall::State::kOutbox;  // still counted (in_outbox)
  call->outbox_key = ++next_outbox_key_;
  outbox_.emplace(call->outbox_key, call);
}

void AmqpTransport::Core::HandleNacked(AmqpConnection& connection) {
  std::vector<CallPtr> nacked;
  nacked.swap(nacked_);
  // A nack from a quorum queue that has room is not about room: the
  // channel cannot reach the queue's leader (see ResetPublishChannel).
  std::map<std::string, bool> full;
  for (const CallPtr& call : nacked) {
    if (full.count(call->queue) != 0) continue;
    absl::StatusOr<uint32_t> ready = connection.QueueMessageCount(call->queue);
    full[call->queue] =
        ready.ok() && static_cast<int64_t>(*ready) >= options_.amqp.queue_limits.max_length;
  }
  bool retry = false;
  const absl::Time now = absl::Now();
  {
    MutexLock lock(&mu_);
    for (const CallPtr& call : nacked) {
      if (call->state != PendingCall::State::kInFlight) continue;  // answered meanwhile
      if (call->deadline <= now) continue;  // its caller has been answered (Expire)
      if (full[call->queue]) {
        Finish(call, absl::ResourceExhaustedError(absl::StrCat(
                         "the broker refused the request to \"", call->queue,
                         "\" (basic.nack): the queue is full (queue_limits.max_length ",
                         options_.amqp.queue_limits.max_length, ")")));
      } else {
        Requeue(call);
        retry = true;
      }
    }
  }
  if (retry) {
    const size_t left = unconfirmed_.size();
    (void)connection.ResetPublishChannel();  // an error broke the connection
    {
      // What the old channel carried will not be confirmed now.
      MutexLock lock(&mu_);
      for (auto& [sequence, call] : unconfirmed_) {
        if (call->state == PendingCall::State::kInFlight && call->deadline > now) Requeue(call);
      }
    }
    unconfirmed_.clear();
    publish_hold_until_ = absl::Now() + publish_backoff_;
    LogEvent(LogLevel::kWarning, "amqp_publish_channel_reset",
             {{"role", "client"},
              {"reason", "a quorum queue with room nacked a request"},
              {"nacked", absl::StrCat(nacked.size())},
              {"republished", absl::StrCat(nacked.size() + left)},
              {"retry_in_ms", absl::StrCat(absl::ToInt64Milliseconds(publish_backoff_))}});
    publish_backoff_ = std::min(publish_backoff_ * 2, kMaxPublishBackoff);
  }
  DeliverReady();
}

void AmqpTransport::Core::FailUnconfirmed(const absl::Status& status,
                                          const std::map<uint64_t, CallPtr>& in_flight) {
  std::vector<CallPtr> failed;
  for (auto& [key, call] : outbox_) failed.push_back(call);
  for (auto& [sequence, call] : in_flight) {
    if (call->state == PendingCall::State::kInFlight) failed.push_back(call);
  }
  for (const CallPtr& call : failed) Finish(call, status);
}

void AmqpTransport::Core::Expire(const CallPtr& call) {
  if (!call->done) return;  // answered already
  TransportResult out;
  const std::string service = ServiceOfMethod(call->method);
  switch (call->state) {
    case PendingCall::State::kDone:
      return;
    case PendingCall::State::kConfirmed:
      RememberLate(call);
      out.queued_id = call->id;
      out.response = absl::DeadlineExceededError(absl::StrCat(
          "no reply from ", service, " before the deadline; the request is queued as ", call->id));
      break;
    case PendingCall::State::kOutbox:
    case PendingCall::State::kInFlight:
      // Not known to be stored: nobody will ask for the outcome. A call
      // still in the outbox leaves it now, request and all.
      LeaveOutbox(*call);
      if (call->state == PendingCall::State::kOutbox) std::string().swap(call->request);
      calls_.erase(call->id);
      out.response = absl::DeadlineExceededError(
          absl::StrCat("deadline passed before the broker confirmed the request to ", service));
      break;
  }
  Delivery delivery;
  delivery.done = std::move(call->done);
  if (!out.queued_id.empty()) delivery.queued = call;
  delivery.result = std::move(out);
  ready_.push_back(std::move(delivery));
  call->done = nullptr;
}

void AmqpTransport::Core::NotifyOrphan(AmqpMessage message) {
  const std::string id = message.properties.correlation_id;
  absl::StatusOr<std::string> response =
      message.body_dropped || message.body.size() > options_.max_message_bytes
          ? internal::MessageTooLarge("reply", message.body_size, options_.max_message_bytes)
          : ReplyOutcome(std::move(message));
  MutexLock hold(&listener_mu_);
  const bool taken = listener_ && listener_(id, response);
  orphans_.fetch_add(1, std::memory_order_relaxed);
  if (!taken) {
    LogEvent(LogLevel::kWarning, "amqp_orphan_reply_dropped",
             {{"queue", orphan_queue_},
              {"correlation_id", id},
              {"reason", listener_ ? "the listener did not take it" : "no listener"}});
  }
}

void AmqpTransport::Core::AnsweredQueued(const CallPtr& call) {
  {
    MutexLock lock(&mu_);
    call->answered = true;
    if (call->state != PendingCall::State::kDone) return;  // FileResult will tell
    if (shutting_down_) return;                            // its "shut down" is no reply
  }
  NotifyLate(call->id);
}

void AmqpTransport::Core::NotifyLate(const std::string& id) {
  MutexLock hold(&listener_mu_);
  if (!listener_) return;
  absl::StatusOr<std::string> response = absl::UnknownError("no reply");
  {
    MutexLock lock(&mu_);
    auto it = calls_.find(id);
    if (it == calls_.end() || !it->second->late || it->second->state != PendingCall::State::kDone) {
      return;  // taken, expired or dropped meanwhile
    }
    response = it->second->result;
  }
  if (!listener_(id, response)) return;  // left for TakeLateReply
  MutexLock lock(&mu_);
  auto it = calls_.find(id);
  if (it == calls_.end() || !it->second->late || it->second->state != PendingCall::State::kDone) {
    return;
  }
  late_bytes_ -= it->second->result_bytes;
  calls_.erase(it);
  --late_count_;
}

void AmqpTransport::Core::DeliverReady() {
  std::vector<Delivery> batch;
  std::vector<std::string> notify;
  {
    MutexLock lock(&mu_);
    batch.swap(ready_);
    notify.swap(late_notify_);
  }
  for (std::string& id : notify) {
    auto task = [this, id = std::move(id)] { NotifyLate(id); };
    if (!callbacks_->Submit(task)) task();
  }
  for (Delivery& delivery : batch) {
    // std::function wants a copyable task: the delivery rides in a
    // shared_ptr.
    auto task = [this, d = std::make_shared<Delivery>(std::move(delivery))] {
      if (d->reply.has_value()) d->result.response = ReplyOutcome(*std::move(d->reply));
      d->done(std::move(d->result));
      if (d->queued != nullptr) AnsweredQueued(d->queued);
    };
    // A full queue (or a pool stopping): run it here, which slows this
    // thread's producer down.
    if (!callbacks_->Submit(task)) task();
  }
}

void AmqpTransport::Core::RememberLate(const CallPtr& call) {
  call->late = true;
  call->expires = absl::Now() + options_.late_reply_ttl;
  late_order_.emplace_back(call->expires, call->id);
  ++late_count_;
  SweepLate(absl::Now());
}

void AmqpTransport::Core::SweepLate(absl::Time now) {
  auto live = [this](const std::pair<absl::Time, std::string>& record)
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> PendingCall* {
    auto it = calls_.find(record.second);
    if (it == calls_.end() || !it->second->late || it->second->expires != record.first) {
      return nullptr;  // a stale record: taken, or its expiry moved
    }
    return it->second.get();
  };
  while (!late_order_.empty()) {
    const auto& front = late_order_.front();
    PendingCall* call = live(front);
    if (call != nullptr && front.first > now && late_count_ <= options_.late_reply_capacity &&
        late_bytes_ <= options_.late_reply_max_bytes) {
      break;
    }
    if (call != nullptr) {
      if (front.first > now) late_dropped_.fetch_add(1);  // dropped for room, not expired
      late_bytes_ -= call->result_bytes;
      calls_.erase(front.second);
      --late_count_;
    }
    late_order_.pop_front();
  }
  // Records of calls taken early linger until their expiry: compact them
  // when they outnumber the live ones.
  if (late_order_.size() > 2 * late_count_ + 1024) {
    std::deque<std::pair<absl::Time, std::string>> kept;
    for (auto& record : late_order_) {
      if (live(record) != nullptr) kept.push_back(std::move(record));
    }
    late_order_.swap(kept);
  }
}

void AmqpTransport::Core::CallAsync(const std::string& method, const std::string& request,
                                    absl::Time deadline, TransportCallback done) {
  const auto fail = [&done](absl::Status status) {
    TransportResult out;
    out.response = std::move(status);
    done(std::move(out));
  };
  const std::string service = ServiceOfMethod(method);
  if (service.empty()) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("malformed method name \"", method, "\": want \"/package.Service/Method\"")));
  }
  if (method.size() > kMaxShortString ||
      options_.amqp.queue_prefix.size() + service.size() > kMaxServiceQueueName) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "method name \"", method, "\" too long for AMQP (or for its queue name with the prefix)")));
  }
  // While the connection seeks a broker (at the start, or after a loss until
  // each has been tried) the call waits in the outbox (OnWake keeps it);
  // when every broker has failed, it fails now.
  if (!connection_.Connected() && !connection_.Seeking()) return fail(NotConnected());
  if (connection_.Blocked()) return fail(BlockedStatus());
  if (deadline <= absl::Now()) {
    return fail(absl::DeadlineExceededError("deadline passed before the call was sent"));
  }
  if (request.size() > options_.max_message_bytes) {
    return fail(internal::MessageTooLarge("request", request.size(), options_.max_message_bytes));
  }

  auto call = std::make_shared<PendingCall>();
  // 128 random bits: a publisher cannot guess the id of another's call.
  call->id = RandomHexId();
  call->queue = options_.amqp.queue_prefix + service;
  call->method = method;
  call->request = request;
  call->deadline = deadline;
  call->request_bytes = request.size();
  absl::Status refused = absl::OkStatus();
  {
    MutexLock lock(&mu_);
    if (shutting_down_) {
      refused = absl::UnavailableError("AMQP transport shut down");
    } else if (outbox_calls_ >= options_.outbox_max_calls ||
               request.size() > options_.outbox_max_bytes - outbox_bytes_) {
      outbox_refused_.fetch_add(1);
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "the AMQP outbox is full: ", outbox_calls_, " calls (", outbox_bytes_,
          " bytes of requests) wait for the broker to take them, and this one (", request.size(),
          " bytes) would pass outbox_max_calls ", options_.outbox_max_calls,
          " or outbox_max_bytes ", options_.outbox_max_bytes));
    } else {
      call->done = std::move(done);
      calls_.emplace(call->id, call);
      call->outbox_key = ++next_outbox_key_;
      outbox_.emplace(call->outbox_key, call);
      call->in_outbox = true;
      ++outbox_calls_;
      outbox_bytes_ += call->request_bytes;
      // A deadline more than a year away is taken as none.
      if (deadline - absl::Now() <= absl::Hours(24 * 365)) {
        call->deadline_timer = timers_->Schedule(deadline, [this, call] {
          {
            MutexLock expire_lock(&mu_);
            call->deadline_timer = 0;
            Expire(call);
          }
          DeliverReady();
        });
      }
    }
  }
  if (!refused.ok()) return fail(std::move(refused));
  connection_.Wake();
}

LateReply AmqpTransport::Core::TakeLateReply(const std::string& id) {
  LateReply out;
  MutexLock lock(&mu_);
  SweepLate(absl::Now());
  auto it = calls_.find(id);
  if (it == calls_.end() || !it->second->late) return out;  // kUnknown
  if (it->second->state != PendingCall::State::kDone) {
    out.state = LateReply::State::kPending;
    return out;
  }
  out.state = LateReply::State::kDone;
  out.response = std::move(it->second->result);
  late_bytes_ -= it->second->result_bytes;
  calls_.erase(it);
  --late_count_;
  return out;
}

absl::Status AmqpTransport::Core::OnConnected(AmqpConnection& connection) {
  declared_.clear();
  AmqpQueueSpec reply;
  reply.name = reply_queue_;
  reply.durable = true;
  // Replicated like the service queues: replies on their way outlive the
  // node this client was connected to.
  if (quorum_) reply.arguments["x-queue-type"] = std::string("quorum");
  absl::Duration expiry = std::max(options_.late_reply_ttl, kMinReplyQueueExpiry);
  if (!orphan_queue_.empty()) {
    // A reply unread for orphan_reply_after moves to the orphan queue; the
    // queue outlives its client long enough for the last reply to come and
    // move (a request lives late_reply_ttl in its queue, then runs).
    reply.arguments["x-message-ttl"] = absl::ToInt64Milliseconds(options_.orphan_reply_after);
    reply.arguments["x-dead-letter-exchange"] = std::string();
    reply.arguments["x-dead-letter-routing-key"] = orphan_queue_;
    if (quorum_) {
      // Moved only once the orphan queue has it (at-least-once needs
      // reject-publish).
      reply.arguments["x-dead-letter-strategy"] = std::string("at-least-once");
      reply.arguments["x-overflow"] = std::string("reject-publish");
    }
    expiry += options_.orphan_reply_after + kOrphanMoveMargin;
    AmqpQueueSpec orphans;
    orphans.name = orphan_queue_;
    orphans.durable = true;
    if (quorum_) orphans.arguments["x-queue-type"] = std::string("quorum");
    orphans.arguments["x-max-length"] = options_.amqp.queue_limits.max_length;
    orphans.arguments["x-overflow"] = std::string("reject-publish");
    if (absl::Status status = connection.DeclareQueue(orphans); !status.ok()) return status;
  }
  reply.arguments["x-expires"] = absl::ToInt64Milliseconds(expiry);
  absl::Status status = connection.DeclareQueue(reply);
  if (!status.ok()) return status;
  absl::StatusOr<std::string> tag = connection.Consume(reply_queue_, /*exclusive=*/true);
  if (!tag.ok()) return tag.status();
  if (!orphan_queue_.empty()) {
    absl::StatusOr<std::string> orphan_tag = connection.Consume(orphan_queue_, /*exclusive=*/false);
    if (!orphan_tag.ok()) return orphan_tag.status();
    orphan_tag_ = *std::move(orphan_tag);
  }
  for (const std::string& queue : known_queues_) {
    // A refusal here is reported to the calls that use the queue.
    if (DeclareServiceQueue(connection, queue, quorum_, options_.amqp.queue_limits).ok()) {
      declared_.insert(queue);
    }
    if (!connection.usable()) return absl::UnavailableError("connection lost while declaring");
  }
  return absl::OkStatus();
}

absl::Status AmqpTransport::Core::EnsureDeclared(AmqpConnection& connection,
                                                 const std::string& queue) {
  if (declared_.count(queue) != 0) return absl::OkStatus();
  absl::Status status = DeclareServiceQueue(connection, queue, quorum_, options_.amqp.queue_limits);
  if (!status.ok()) return status;
  declared_.insert(queue);
  known_queues_.insert(queue);
  return absl::OkStatus();
}

void AmqpTransport::Core::OnWake(AmqpConnection& connection) {
  if (!nacked_.empty() && connection.usable()) HandleNacked(connection);
  std::vector<CallPtr> batch;
  {
    MutexLock lock(&mu_);
    if (outbox_.empty()) return;
    // After a publish channel was replaced, wait.
    if (connection.usable() && absl::Now() < publish_hold_until_) {
      connection.WakeBy(publish_hold_until_);
      return;
    }
    // Calls wait while the connection seeks a broker.
    if (!connection.usable() && connection.Seeking()) return;
    if (connection.usable() && connection.Blocked()) {
      // Published now, they would wait unread (and a large one would stall
      // this thread in its write): they fail at once instead.
      FailUnconfirmed(BlockedStatus(), {});
    } else {
      batch.reserve(outbox_.size());
      for (auto& [key, call] : outbox_) {
        call->outbox_key = 0;
        call->state = PendingCall::State::kInFlight;  // still counted in the outbox
        batch.push_back(std::move(call));
      }
      outbox_.clear();
    }
  }
  if (batch.empty()) return DeliverReady();
  // Publish the whole batch without the lock, then file the outcomes.
  std::vector<std::pair<CallPtr, absl::Status>> failed;
  AmqpProperties properties;
  properties.content_type = std::string(kContentType);
  properties.reply_to = reply_queue_;
  // Checked by the broker: the service learns who called (IncomingCall::peer).
  properties.user_id = connection.user();
  properties.expiration = expiration_;
  properties.delivery_mode = 2;
  for (CallPtr& call : batch) {
    if (!connection.usable()) {
      failed.emplace_back(std::move(call), NotConnected());
      continue;
    }
    absl::Status declared = EnsureDeclared(connection, call->queue);
    if (!declared.ok()) {
      failed.emplace_back(std::move(call),
                          absl::UnavailableError(absl::StrCat(
                              "cannot declare queue \"", call->queue, "\": ", declared.message())));
      continue;
    }
    properties.type = call->method;
    properties.correlation_id = call->id;
    // How long the server may run it, from when it starts: the time the
    // caller has left (the queue wait is `expiration`'s business).
    properties.headers.clear();
    if (call->deadline != absl::InfiniteFuture()) {
      properties.headers[std::string(kTimeoutHeader)] =
          std::max<int64_t>(1, absl::ToInt64Milliseconds(call->deadline - absl::Now()));
    }
    absl::StatusOr<uint64_t> sequence =
        connection.Publish("", call->queue, /*mandatory=*/true, properties, call->request);
    if (!sequence.ok()) {
      failed.emplace_back(std::move(call), sequence.status());
      continue;
    }
    // The request is kept until the broker confirms it: should the
    // connection be lost first, it is sent again on the next.
    unconfirmed_.emplace(*sequence, std::move(call));
  }
  if (failed.empty()) return;
  {
    MutexLock lock(&mu_);
    for (auto& [call, status] : failed) Finish(call, std::move(status));
  }
  DeliverReady();
}

void AmqpTransport::Core::OnConfirm(AmqpConnection& connection, uint64_t sequence, bool multiple,
                                    bool ack) {
  (void)connection;
  auto first = multiple ? unconfirmed_.begin() : unconfirmed_.find(sequence);
  if (first == unconfirmed_.end()) return;
  auto last = multiple ? unconfirmed_.upper_bound(sequence) : std::next(first);
  {
    MutexLock lock(&mu_);
    for (auto it = first; it != last; ++it) {
      const CallPtr& call = it->second;
      if (call->state != PendingCall::State::kInFlight) continue;  // returned or answered
      if (ack) {
        LeaveOutbox(*call);
        call->state = PendingCall::State::kConfirmed;
        std::string().swap(call->request);  // the broker has it now
        publish_backoff_ = kMinPublishBackoff;
      } else if (quorum_) {
        nacked_.push_back(call);  // HandleNacked, at the next OnWake
      } else {
        // A full queue (x-overflow reject-publish) is the usual reason.
        Finish(call, absl::ResourceExhaustedError(absl::StrCat(
                         "the broker refused the request to \"", call->queue,
                         "\" (basic.nack): the queue is full (queue_limits.max_length ",
                         options_.amqp.queue_limits.max_length, ")")));
      }
    }
    unconfirmed_.erase(first, last);
  }
  DeliverReady();
}

void AmqpTransport::Core::OnReturn(AmqpConnection& connection, AmqpMessage message) {
  (void)connection;
  // The queue is gone (it was cached as declared): declare it again next time.
  declared_.erase(message.routing_key);
  {
    MutexLock lock(&mu_);
    auto it = calls_.find(message.properties.correlation_id);
    if (it == calls_.end()) return;
    Finish(it->second, absl::UnavailableError(
                           absl::StrCat("no queue took the request to \"", message.routing_key,
                                        "\": ", message.reply_code, " ", message.reply_text)));
  }
  DeliverReady();
}

void AmqpTransport::Core::OnDelivery(AmqpConnection& connection, AmqpMessage message) {
  (void)connection;
  reply_tag_seen_ = std::max(reply_tag_seen_, message.delivery_tag);
  if (!Believed(message)) return;  // dropped (and acked)
  if (!orphan_tag_.empty() && message.consumer_tag == orphan_tag_) {
    bool ours = false;
    {
      MutexLock lock(&mu_);
      ours = calls_.count(message.properties.correlation_id) != 0;
    }
    if (!ours) {
      // Another client's reply (or an earlier life's): the listener's, on a
      // callback thread, never under mu_.
      auto task = [this, m = std::make_shared<AmqpMessage>(std::move(message))] {
        NotifyOrphan(std::move(*m));
      };
      if (!callbacks_->Submit(task)) task();
      return;
    }
  }
  {
    MutexLock lock(&mu_);
    auto it = calls_.find(message.properties.correlation_id);
    if (it == calls_.end()) return;  // unknown or expired: dropped (and acked)
    if (it->second->state == PendingCall::State::kDone) return;  // a duplicate
    if (message.body_dropped || message.body.size() > options_.max_message_bytes) {
      Finish(it->second,
             internal::MessageTooLarge("reply", message.body_size, options_.max_message_bytes));
    } else {
      FinishWithReply(it->second, std::move(message));
    }
  }
  DeliverReady();
}

void AmqpTransport::Core::OnIdle(AmqpConnection& connection) {
  if (reply_tag_seen_ > reply_tag_acked_) {
    // One ack for every reply of the round.
    if (connection.Ack(reply_tag_seen_, /*multiple=*/true).ok()) {
      reply_tag_acked_ = reply_tag_seen_;
    }
  }
}

void AmqpTransport::Core::OnBlocked(AmqpConnection& connection, const std::string& reason) {
  (void)connection;
  (void)reason;  // in BlockedStatus
  // What is published but not confirmed stays unread until the broker
  // unblocks, and that waits for an operator: fail it now rather than at
  // its deadline. (Should the broker take it later, its reply is dropped.)
  {
    MutexLock lock(&mu_);
    FailUnconfirmed(BlockedStatus(), unconfirmed_);
  }
  DeliverReady();
}

void AmqpTransport::Core::OnDisconnected(const absl::Status& why) {
  declared_.clear();
  orphan_tag_.clear();  // consumers end with their connection
  publish_hold_until_ = absl::InfinitePast();
  reply_tag_seen_ = 0;
  reply_tag_acked_ = 0;
  // What the broker had not confirmed, and nacked calls not handled yet.
  std::vector<CallPtr> lost;
  lost.reserve(unconfirmed_.size() + nacked_.size());
  for (auto& [sequence, call] : unconfirmed_) lost.push_back(std::move(call));
  for (CallPtr& call : nacked_) lost.push_back(std::move(call));
  unconfirmed_.clear();
  nacked_.clear();
  bool resend = false;
  {
    MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (const CallPtr& call : lost) {
      if (call->state != PendingCall::State::kInFlight) continue;
      // Whether the broker took it is unknown. List and Search are reads:
      // it goes once more, on the next connection (to the next broker of
      // the list), and should both copies be served the second reply finds
      // the call answered and is dropped.
      if (!call->resent && !shutting_down_ && call->deadline > now) {
        call->resent = true;
        Requeue(call);
        resent_.fetch_add(1, std::memory_order_relaxed);
        resend = true;
        continue;
      }
      Finish(call, absl::UnavailableError(
                       absl::StrCat("connection to the broker lost before it confirmed the request",
                                    call->resent ? " (sent twice)" : "", ": ", why.message())));
    }
  }
  DeliverReady();
  if (resend) connection_.Wake();
}

AmqpTransport::AmqpTransport(std::unique_ptr<Core> core) : core_(std::move(core)) {}
AmqpTransport::~AmqpTransport() = default;

absl::StatusOr<std::unique_ptr<AmqpTransport>> AmqpTransport::Create(
    const FailoverChannelOptions& options) {
  absl::StatusOr<std::vector<AmqpUrl>> urls = ParseAmqpUrls(options.amqp.url);
  if (!urls.ok()) return urls.status();
  if (options.amqp.queue_prefix.size() + sizeof(kReplyQueueInfix) + 32 > kMaxShortString) {
    return absl::InvalidArgumentError("queue_prefix too long for AMQP queue names");
  }
  if (options.late_reply_max_bytes == 0) {
    return absl::InvalidArgumentError("late_reply_max_bytes must be at least 1");
  }
  if (options.outbox_max_calls == 0 || options.outbox_max_bytes == 0) {
    return absl::InvalidArgumentError("outbox_max_calls and outbox_max_bytes must be at least 1");
  }
  if (options.callback_threads < 1 || options.callback_threads > kMaxCallbackThreads) {
    return absl::InvalidArgumentError(absl::StrCat(
        "callback_threads must be 1 to ", kMaxCallbackThreads, ", not ", options.callback_threads));
  }
  if (options.late_reply_ttl < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("late_reply_ttl must be at least 1 ms");
  }
  if (options.share_orphan_replies && options.orphan_reply_after < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("orphan_reply_after must be at least 100ms, not ",
                     absl::FormatDuration(options.orphan_reply_after)));
  }
  if (absl::Status checked = CheckEndpointOptions(options.amqp, options.reconnect_backoff_min,
                                                  options.reconnect_backoff_max);
      !checked.ok()) {
    return checked;
  }
  if (absl::Status size = internal::CheckMaxMessageBytes(options.max_message_bytes); !size.ok()) {
    return size;
  }
  auto core = std::make_unique<Core>(options, *urls);
  absl::Status started = core->Start();
  if (!started.ok()) return started;
  return std::unique_ptr<AmqpTransport>(new AmqpTransport(std::move(core)));
}

void AmqpTransport::CallAsync(const std::string& method, const std::string& request,
                              const CallOptions& options, TransportCallback done) {
  core_->CallAsync(method, request, options.deadline, std::move(done));
}

bool AmqpTransport::KnownUnavailable() const { return core_->KnownUnavailable(); }

uint64_t AmqpTransport::replies_refused() const { return core_->replies_refused(); }

uint64_t AmqpTransport::outbox_refused() const { return core_->outbox_refused(); }

uint64_t AmqpTransport::resent() const { return core_->resent(); }

uint64_t AmqpTransport::orphan_replies() const { return core_->orphan_replies(); }

uint64_t AmqpTransport::late_replies_dropped() const { return core_->late_replies_dropped(); }

LateReply AmqpTransport::TakeLateReply(const std::string& queued_id) {
  return core_->TakeLateReply(queued_id);
}

void AmqpTransport::SetLateReplyListener(const LateReplyListener& listener) {
  core_->SetLateReplyListener(listener);
}

bool AmqpTransport::Connected() const { return core_->Connected(); }

const std::string& AmqpTransport::reply_queue() const { return core_->reply_queue(); }

}  // namespace filemesh::internal
