#include "rpc/amqp_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <utility>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/service/log.hpp"
#include "rpc/amqp_connection.h"
#include "rpc/amqp_envelope.h"
#include "rpc/amqp_url.h"
#include "rpc/message_limits.h"

namespace filemesh::internal {
namespace {

// What becomes of a request once the broker confirmed its reply.
enum class Settle { kAck, kReject };

// A handler's outcome, waiting for the I/O thread to publish it.
struct Completion {
  uint64_t generation = 0;
  uint64_t delivery_tag = 0;
  std::string reply_to;
  std::string correlation_id;
  absl::StatusOr<std::string> result;
};

}  // namespace

class AmqpServer::Core : public AmqpSession, public std::enable_shared_from_this<Core> {
 public:
  Core(AmqpServerOptions options, const std::vector<AmqpUrl>& urls)
      : options_(std::move(options)),
        quorum_(UsesQuorumQueues(options_.amqp, urls.size())),
        connection_(ConnectionOptionsOf(options_, urls, "filemesh server", "server",
                                        options_.max_request_bytes),
                    this) {}
  ~Core() override { connection_.Shutdown(); }

  absl::Status Start() { return connection_.Start(); }
  void Shutdown(absl::Duration grace);
  bool Connected() const { return connection_.Connected(); }
  std::string LastError() const { return connection_.LastError(); }

  // AmqpSession (I/O thread).
  absl::Status OnConnected(AmqpConnection& connection) override;
  void OnDelivery(AmqpConnection& connection, AmqpMessage message) override;
  void OnReturn(AmqpConnection& connection, AmqpMessage message) override {
    (void)connection;
    (void)message;  // replies are not mandatory: nothing comes back
  }
  void OnConfirm(AmqpConnection& connection, uint64_t sequence, bool multiple, bool ack) override;
  void OnWake(AmqpConnection& connection) override;
  void OnDisconnected(const absl::Status& why) override;

 private:
  // Publishes the reply for a delivery and settles the delivery.
  void Reply(AmqpConnection& connection, const std::string& reply_to,
             const std::string& correlation_id, absl::StatusOr<std::string> result,
             uint64_t delivery_tag, Settle settle);
  // A reply the broker has not confirmed yet (quorum queues only), kept to
  // be published again should it be nacked or its connection lost.
  struct KeptReply {
    std::string reply_to;
    std::string correlation_id;
    absl::StatusOr<std::string> result;
    int nacks = 0;          // the broker refused it so often
    absl::Time not_before;  // published again from then on (a backoff)
  };
  // Publishes the replies to send again whose time has come, after a new
  // publish channel when one was asked for.
  void ResendReplies(AmqpConnection& connection);
  // Publish channels are replaced at most this often.
  static constexpr absl::Duration kMinResetInterval = absl::Milliseconds(50);
  // A nacked reply is published again; its reply queue refusing it this
  // often is no leader election (those end within seconds: the backoff
  // between the attempts adds up to about 5 s) but a queue that takes
  // nothing, and the reply is dropped: a client's queue must not pin the
  // server's kept replies (MaxKeptReplies).
  static constexpr int kMaxReplyNacks = 8;
  uint64_t replies_dropped_ = 0;  // I/O thread
  // Publishes `reply`; keeps it until confirmed. False when not published
  // (the connection is down: it waits in replies_to_resend_).
  bool PublishReply(AmqpConnection& connection, KeptReply reply);
  // Replies waiting for a confirm or to be published again, at most.
  size_t MaxKeptReplies() const {
    return static_cast<size_t>(options_.prefetch) * options_.services.size();
  }
  size_t KeptReplies() const { return unconfirmed_replies_.size() + replies_to_resend_.size(); }
  void Complete(Completion completion);  // any thread
  void Settled(int64_t count);
  // A delivery that says an earlier one ended without an answer: dead-letters
  // it past max_deliveries, else puts a copy counting it back in the queue.
  // False when the request is to run here after all (no count applies).
  bool Redelivered(AmqpConnection& connection, const AmqpMessage& message);
  // Answers or dead-letters a delivery that is no request this server may
  // run; true when it did.
  bool Refused(AmqpConnection& connection, const AmqpMessage& message);

  // A request put back in its queue (Redelivered), awaiting the broker's
  // confirm of the copy before the original is settled.
  struct Requeued {
    uint64_t generation = 0;
    uint64_t delivery_tag = 0;
  };

  const AmqpServerOptions options_;
  const bool quorum_;  // UsesQuorumQueues
  // Where replies may go: "<prefix>filemesh.reply." and a client's id.
  const std::string reply_namespace_ = absl::StrCat(options_.amqp.queue_prefix, kReplyQueueInfix);

  Mutex mu_;
  CondVar settled_cv_{&mu_};
  std::vector<Completion> completions_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Dispatched or answered, not yet acked.
  int64_t unsettled_ ABSL_GUARDED_BY(mu_) = 0;

  // I/O thread only.
  std::map<std::string, std::string> consumer_services_;  // consumer tag -> service
  bool consumers_cancelled_ = false;
  std::map<uint64_t, Requeued> requeued_;  // publish sequence of the copy -> original
  // Quorum queues: replies sent, by publish sequence, until confirmed; and
  // those nacked or lost with their connection, to publish again.
  std::map<uint64_t, KeptReply> unconfirmed_replies_;
  std::deque<KeptReply> replies_to_resend_;
  bool reset_publishing_ = false;  // a reply was nacked: new publish channel
  absl::Time next_reset_;          // not before (kMinResetInterval)
  uint64_t refused_reply_to_ = 0;  // requests whose reply_to was outside the namespace

  AmqpConnection connection_;  // last: its thread uses everything above
};

absl::Status AmqpServer::Core::OnConnected(AmqpConnection& connection) {
  consumer_services_.clear();
  consumers_cancelled_ = false;
  for (const std::string& service : options_.services) {
    absl::Status status = DeclareServiceQueue(connection, options_.amqp.queue_prefix + service,
                                              quorum_, options_.amqp.queue_limits);
    if (!status.ok()) return status;
  }
  {
    MutexLock lock(&mu_);
    if (stopping_) return absl::OkStatus();  // shutting down: do not consume
  }
  absl::Status status = connection.Qos(options_.prefetch);
  if (!status.ok()) return status;
  for (const std::string& service : options_.services) {
    absl::StatusOr<std::string> tag =
        connection.Consume(options_.amqp.queue_prefix + service, /*exclusive=*/false);
    if (!tag.ok()) return tag.status();
    consumer_services_[*tag] = service;
  }
  return absl::OkStatus();
}

bool AmqpServer::Core::Refused(AmqpConnection& connection, const AmqpMessage& message) {
  const uint64_t tag = message.delivery_tag;
  const AmqpProperties& p = message.properties;
  if (p.reply_to.size() <= reply_namespace_.size() ||
      !absl::StartsWith(p.reply_to, reply_namespace_)) {
    // Nobody to answer, or an answer to a queue outside the clients' reply
    // namespace: anyone who may publish a request could otherwise have the
    // service write into any queue. Running it would be wasted work whose
    // outcome is lost; dead-letter it so an operator can see it.
    if (!p.reply_to.empty() && (++refused_reply_to_ == 1 || refused_reply_to_ % 100 == 0)) {
      LogEvent(LogLevel::kWarning, "amqp_request_refused",
               {{"queue", message.routing_key},
                {"reply_to", p.reply_to},
                {"reason", "reply_to outside the reply namespace"},
                {"count", absl::StrCat(refused_reply_to_)}});
    }
    (void)connection.Reject(tag, /*requeue=*/false);
    Settled(1);
    return true;
  }
  if (message.body_dropped) {
    Reply(connection, p.reply_to, p.correlation_id,
          MessageTooLarge("request", message.body_size, options_.max_request_bytes,
                          "max_request_bytes"),
          tag, Settle::kReject);
    return true;
  }
  std::string problem;
  if (p.type.empty()) {
    problem = "no `type` property (the method)";
  } else if (p.content_type != kContentType) {
    problem = absl::StrCat("content_type is \"", p.content_type, "\", want \"", kContentType, "\"");
  } else if (p.correlation_id.empty()) {
    problem = "no correlation_id";
  }
  if (!problem.empty()) {
    Reply(connection, p.reply_to, p.correlation_id,
          absl::InvalidArgumentError(absl::StrCat("not a filemesh request: ", problem)), tag,
          Settle::kReject);
    return true;
  }
  auto consumer = consumer_services_.find(message.consumer_tag);
  const std::string queue_service =
      consumer == consumer_services_.end() ? std::string() : consumer->second;
  if (ServiceOfMethod(p.type) != queue_service) {
    Reply(connection, p.reply_to, p.correlation_id,
          absl::UnimplementedError(absl::StrCat("method \"", p.type, "\" is not served on queue \"",
                                                message.routing_key, "\"")),
          tag, Settle::kAck);
    return true;
  }
  return false;
}

void AmqpServer::Core::OnDelivery(AmqpConnection& connection, AmqpMessage message) {
  const uint64_t tag = message.delivery_tag;
  const AmqpProperties& p = message.properties;
  {
    MutexLock lock(&mu_);
    if (stopping_) {
      // Consumers are being cancelled: give it back for another server.
      (void)connection.Reject(tag, /*requeue=*/true);
      return;
    }
    ++unsettled_;
  }
  if (Refused(connection, message)) return;

  // How long it may run: the caller's run-time header; from a client that
  // sends none (older ones), its `expiration`; else the default. The host
  // caps it (ServiceHostOptions::max_call_time).
  if (message.redelivered && Redelivered(connection, message)) return;

  absl::Duration budget = options_.default_deadline;
  absl::Duration given;
  if (ParseTimeoutHeader(p.headers, &given) || ParseExpiration(p.expiration, &given)) {
    budget = given;
  }
  const absl::Time deadline = absl::Now() + budget;

  Completion base;
  base.generation = connection.generation();
  base.delivery_tag = tag;
  base.reply_to = p.reply_to;
  base.correlation_id = p.correlation_id;
  // `done` may come from any thread, after this server is gone, or (from a
  // broken dispatcher) twice: only the first call of a live server counts.
  auto called = std::make_shared<std::atomic<bool>>(false);
  std::weak_ptr<Core> weak = weak_from_this();
  ReplyCallback done = [weak, called, base](absl::StatusOr<std::string> result) mutable {
    if (called->exchange(true)) return;
    std::shared_ptr<Core> self = weak.lock();
    if (self == nullptr) return;
    base.result = std::move(result);
    self->Complete(std::move(base));
  };
  try {
    IncomingCall call;
    call.method = p.type;
    call.deadline = deadline;
    call.peer = p.user_id;  // vouched for by the broker
    options_.dispatch(std::move(call), std::move(message.body), done);
  } catch (const std::exception& e) {
    done(absl::InternalError(absl::StrCat("dispatch failed: ", e.what())));
  } catch (...) {
    done(absl::InternalError("dispatch failed"));
  }
}

void AmqpServer::Core::Complete(Completion completion) {
  {
    MutexLock lock(&mu_);
    completions_.push_back(std::move(completion));
  }
  connection_.Wake();
}

void AmqpServer::Core::OnWake(AmqpConnection& connection) {
  bool stopping;
  std::vector<Completion> batch;
  {
    MutexLock lock(&mu_);
    stopping = stopping_;
    batch.swap(completions_);
  }
  if (stopping && !consumers_cancelled_ && connection.usable()) {
    consumers_cancelled_ = true;
    for (const auto& [tag, service] : consumer_services_) {
      if (!connection.Cancel(tag).ok()) break;
    }
  }
  if (quorum_ && connection.usable()) ResendReplies(connection);
  size_t taken = 0;
  for (Completion& c : batch) {
    // Deliveries of an earlier connection are void: the broker delivers
    // them again, so their outcome is dropped.
    if (c.generation != connection.generation() || !connection.usable()) {
      ++taken;
      continue;
    }
    // Replies kept for the broker's confirm are bounded: past the bound the
    // rest waits, their requests unacked (so prefetch stops deliveries).
    if (quorum_ && KeptReplies() >= MaxKeptReplies()) break;
    ++taken;
    // A request that does not parse will not parse anywhere: answered, then
    // dead-lettered for an operator to see.
    const Settle settle =
        !c.result.ok() && IsUnparseableRequest(c.result.status()) ? Settle::kReject : Settle::kAck;
    Reply(connection, c.reply_to, c.correlation_id, std::move(c.result), c.delivery_tag, settle);
  }
  if (taken < batch.size()) {
    MutexLock lock(&mu_);
    completions_.insert(completions_.begin(), std::make_move_iterator(batch.begin() + taken),
                        std::make_move_iterator(batch.end()));
  }
}

void AmqpServer::Core::ResendReplies(AmqpConnection& connection) {
  const absl::Time now = absl::Now();
  if (reset_publishing_) {
    if (now < next_reset_) {
      connection.WakeBy(next_reset_);
    } else {
      // A quorum queue nacked a reply: the channel may not reach the
      // queue's leader (see AmqpConnection::ResetPublishChannel). A new
      // one, at most every kMinResetInterval; what the old one had not
      // confirmed goes again at once.
      reset_publishing_ = false;
      next_reset_ = now + kMinResetInterval;
      (void)connection.ResetPublishChannel();
      for (auto& [sequence, reply] : unconfirmed_replies_) {
        reply.not_before = now;
        replies_to_resend_.push_back(std::move(reply));
      }
      unconfirmed_replies_.clear();
      LogEvent(LogLevel::kWarning, "amqp_publish_channel_reset",
               {{"role", "server"},
                {"reason", "a quorum reply queue nacked a reply"},
                {"replies_to_resend", absl::StrCat(replies_to_resend_.size())}});
    }
  }
  // Each nacked reply waits its own backoff; the others go now.
  absl::Time next = absl::InfiniteFuture();
  std::deque<KeptReply> waiting;
  while (!replies_to_resend_.empty() && connection.usable()) {
    KeptReply reply = std::move(replies_to_resend_.front());
    replies_to_resend_.pop_front();
    if (reply.not_before > now) {
      next = std::min(next, reply.not_before);
      waiting.push_back(std::move(reply));
      continue;
    }
    PublishReply(connection, std::move(reply));
  }
  for (KeptReply& reply : waiting) replies_to_resend_.push_back(std::move(reply));
  if (next != absl::InfiniteFuture()) connection.WakeBy(next);
}

bool AmqpServer::Core::PublishReply(AmqpConnection& connection, KeptReply reply) {
  AmqpProperties properties;
  properties.content_type = std::string(kContentType);
  properties.correlation_id = reply.correlation_id;
  // The broker checks it against this connection's user: clients believe
  // replies from service users only (AmqpOptions::service_users).
  properties.user_id = connection.user();
  properties.delivery_mode = 2;
  properties.headers = StatusHeaders(reply.result.status());
  const std::string_view body =
      reply.result.ok() ? std::string_view(*reply.result) : std::string_view();
  absl::StatusOr<uint64_t> sequence =
      connection.Publish("", reply.reply_to, /*mandatory=*/false, properties, body);
  if (!sequence.ok()) {
    if (quorum_) replies_to_resend_.push_back(std::move(reply));
    return false;
  }
  if (quorum_) unconfirmed_replies_.emplace(*sequence, std::move(reply));
  return true;
}

void AmqpServer::Core::Reply(AmqpConnection& connection, const std::string& reply_to,
                             const std::string& correlation_id, absl::StatusOr<std::string> result,
                             uint64_t delivery_tag, Settle settle) {
  // On failure the connection is down and the delivery void (redelivered).
  KeptReply reply;
  reply.reply_to = reply_to;
  reply.correlation_id = correlation_id;
  reply.result = std::move(result);
  if (!PublishReply(connection, std::move(reply))) return;
  // Settle the request right behind its reply, on the same channel: the
  // broker reads the two in order, so it never sees the ack without the
  // reply. Waiting for the reply's confirm (an fsync for a persistent
  // message) would hold a prefetch slot per request for that long and cap a
  // server at prefetch / fsync latency (3,200 calls/s here at prefetch 32,
  // against 7,000 without the wait). What is given up: a reply the broker
  // had received but not yet written when it crashed hard.
  if (settle == Settle::kAck) {
    (void)connection.Ack(delivery_tag, /*multiple=*/false);
  } else {
    (void)connection.Reject(delivery_tag, /*requeue=*/false);
  }
  Settled(1);
}

bool AmqpServer::Core::Redelivered(AmqpConnection& connection, const AmqpMessage& message) {
  // Quorum queues count deliveries themselves (x-delivery-limit).
  if (quorum_) return false;
  const AmqpProperties& p = message.properties;
  int64_t earlier = 0;
  auto it = p.headers.find(std::string(kRedeliveriesHeader));
  if (it != p.headers.end()) {
    if (const int64_t* n = std::get_if<int64_t>(&it->second); n != nullptr && *n > 0) earlier = *n;
  }
  // This delivery is here because the one before it ended without an answer.
  const int64_t unanswered = earlier + 1;
  if (unanswered >= options_.amqp.queue_limits.max_deliveries) {
    Reply(connection, p.reply_to, p.correlation_id,
          absl::AbortedError(
              absl::StrCat("the request was delivered ", unanswered,
                           " times without an answer (its servers stopped while holding it); it is "
                           "dead-lettered to \"",
                           message.routing_key, ".dlq\"")),
          message.delivery_tag, Settle::kReject);
    return true;
  }
  // Put a copy that counts this back at the tail of the queue; the original
  // is settled once the broker has the copy (OnConfirm).
  AmqpProperties copy = p;
  copy.headers[std::string(kRedeliveriesHeader)] = unanswered;
  absl::StatusOr<uint64_t> sequence =
      connection.Publish("", message.routing_key, /*mandatory=*/false, copy, message.body);
  // On failure the connection is down and the delivery void (redelivered).
  if (sequence.ok()) requeued_[*sequence] = Requeued{connection.generation(), message.delivery_tag};
  return true;
}

void AmqpServer::Core::OnConfirm(AmqpConnection& connection, uint64_t sequence, bool multiple,
                                 bool ack) {
  if (quorum_) {
    auto first = multiple ? unconfirmed_replies_.begin() : unconfirmed_replies_.find(sequence);
    auto last = multiple ? unconfirmed_replies_.upper_bound(sequence)
                         : (first == unconfirmed_replies_.end() ? first : std::next(first));
    if (!ack) {
      for (auto it = first; it != last; ++it) {
        KeptReply& reply = it->second;
        if (++reply.nacks < kMaxReplyNacks) {
          // 50 ms, doubling, at most 2 s.
          reply.not_before =
              absl::Now() + std::min(absl::Milliseconds(50) * (int64_t{1} << (reply.nacks - 1)),
                                     absl::Seconds(2));
          replies_to_resend_.push_back(std::move(reply));
          reset_publishing_ = true;
          continue;
        }
        if (++replies_dropped_ == 1 || replies_dropped_ % 100 == 0) {
          LogEvent(LogLevel::kWarning, "amqp_reply_dropped",
                   {{"queue", reply.reply_to},
                    {"reason", "the broker refused it every time (basic.nack)"},
                    {"attempts", absl::StrCat(reply.nacks)},
                    {"count", absl::StrCat(replies_dropped_)}});
        }
      }
    }
    unconfirmed_replies_.erase(first, last);
    if (!ack && first != last) connection.Wake();
  }
  // Requests are settled right behind their replies (see Reply), so the
  // confirms of the replies change nothing; those of requeued copies settle
  // their originals: acked once the copy is safe, dead-lettered if the broker
  // refused it (a full queue).
  auto first = multiple ? requeued_.begin() : requeued_.find(sequence);
  if (first == requeued_.end()) return;
  auto last = multiple ? requeued_.upper_bound(sequence) : std::next(first);
  int64_t settled = 0;
  for (auto it = first; it != last; ++it) {
    if (it->second.generation != connection.generation() || !connection.usable()) continue;
    if (ack) {
      (void)connection.Ack(it->second.delivery_tag, /*multiple=*/false);
    } else {
      (void)connection.Reject(it->second.delivery_tag, /*requeue=*/false);
    }
    ++settled;
  }
  requeued_.erase(first, last);
  Settled(settled);
}

void AmqpServer::Core::Settled(int64_t count) {
  if (count == 0) return;
  MutexLock lock(&mu_);
  unsettled_ -= count;
  if (unsettled_ <= 0) {
    unsettled_ = 0;
    settled_cv_.SignalAll();
  }
}

void AmqpServer::Core::OnDisconnected(const absl::Status& why) {
  (void)why;
  consumer_services_.clear();
  // Replies not confirmed go again on the next connection: their requests
  // were settled already, so nobody would answer them otherwise.
  for (auto& [sequence, reply] : unconfirmed_replies_) {
    replies_to_resend_.push_back(std::move(reply));
  }
  unconfirmed_replies_.clear();
  reset_publishing_ = false;
  requeued_.clear();  // their originals go back to the queue with the connection
  MutexLock lock(&mu_);
  // Every unacked delivery of that connection goes back to its queue.
  unsettled_ = 0;
  settled_cv_.SignalAll();
}

void AmqpServer::Core::Shutdown(absl::Duration grace) {
  bool first = false;
  {
    MutexLock lock(&mu_);
    first = !stopping_;
    stopping_ = true;
  }
  if (first) connection_.Wake();
  {
    const absl::Time deadline = absl::Now() + std::max(grace, absl::ZeroDuration());
    MutexLock lock(&mu_);
    while (unsettled_ != 0) {
      if (settled_cv_.WaitUntil(deadline)) break;  // the grace is over
    }
  }
  connection_.Shutdown();
}

AmqpServer::AmqpServer(std::shared_ptr<Core> core) : core_(std::move(core)) {}

AmqpServer::~AmqpServer() { core_->Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<AmqpServer>> AmqpServer::Create(const AmqpServerOptions& options) {
  absl::StatusOr<std::vector<AmqpUrl>> urls = ParseAmqpUrls(options.amqp.url);
  if (!urls.ok()) return urls.status();
  if (options.services.empty()) return absl::InvalidArgumentError("no services to serve");
  for (const std::string& service : options.services) {
    if (service.empty() || service.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad service name \"", service, "\": want \"package.Service\""));
    }
    if (options.amqp.queue_prefix.size() + service.size() > kMaxServiceQueueName) {
      return absl::InvalidArgumentError(
          absl::StrCat("queue name for \"", service, "\" too long for AMQP"));
    }
  }
  if (!options.dispatch) return absl::InvalidArgumentError("no dispatcher");
  if (options.prefetch == 0) return absl::InvalidArgumentError("prefetch must be at least 1");
  if (options.max_request_bytes == 0 || options.max_request_bytes > size_t{INT32_MAX}) {
    return absl::InvalidArgumentError("max_request_bytes must be between 1 and 2^31 - 1");
  }
  if (absl::Status checked = CheckEndpointOptions(options.amqp, options.reconnect_backoff_min,
                                                  options.reconnect_backoff_max);
      !checked.ok()) {
    return checked;
  }
  auto core = std::make_shared<Core>(options, *urls);
  return std::unique_ptr<AmqpServer>(new AmqpServer(std::move(core)));
}

absl::Status AmqpServer::Start() { return core_->Start(); }
void AmqpServer::Shutdown(absl::Duration grace) { core_->Shutdown(grace); }
bool AmqpServer::Connected() const { return core_->Connected(); }
std::string AmqpServer::LastError() const { return core_->LastError(); }

}  // namespace filemesh::internal
