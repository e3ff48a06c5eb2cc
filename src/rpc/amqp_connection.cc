#include "rpc/amqp_connection.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "base/absl_compat.h"
#include "filemesh/service/log.hpp"
#include "service/tls_files.h"

namespace filemesh::internal {
namespace {

constexpr amqp_channel_t kMainChannel = 1;
constexpr amqp_channel_t kTopologyChannel = 2;
// Publishes ride a channel of their own, numbered from here on: each
// ResetPublishChannel moves to the next, so that a confirm of the channel
// before is never taken for one of the new channel's.
constexpr amqp_channel_t kFirstPublishChannel = 3;
constexpr amqp_channel_t kLastPublishChannel = 1000;  // below RabbitMQ's channel_max 2047
constexpr int kFrameMax = 131072;
// Frames handled per loop round before outbound work gets its turn.
constexpr int kMaxFramesPerRound = 4096;

amqp_connection_state_t State(void* conn) { return static_cast<amqp_connection_state_t>(conn); }

amqp_bytes_t Bytes(std::string_view s) {
  amqp_bytes_t b;
  b.len = s.size();
  b.bytes = const_cast<char*>(s.data());
  return b;
}

std::string String(amqp_bytes_t b) {
  if (b.len == 0 || b.bytes == nullptr) return {};
  return std::string(static_cast<const char*>(b.bytes), b.len);
}

// An AmqpTable as an amqp_table_t pointing into it (valid while both live).
class EncodedTable {
 public:
  explicit EncodedTable(const AmqpTable& table) {
    entries_.reserve(table.size());
    for (const auto& [key, value] : table) {
      amqp_table_entry_t entry;
      std::memset(&entry, 0, sizeof(entry));
      entry.key = Bytes(key);
      if (const auto* number = std::get_if<int64_t>(&value)) {
        if (*number >= std::numeric_limits<int32_t>::min() &&
            *number <= std::numeric_limits<int32_t>::max()) {
          entry.value.kind = AMQP_FIELD_KIND_I32;
          entry.value.value.i32 = static_cast<int32_t>(*number);
        } else {
          entry.value.kind = AMQP_FIELD_KIND_I64;
          entry.value.value.i64 = *number;
        }
      } else {
        entry.value.kind = AMQP_FIELD_KIND_UTF8;
        entry.value.value.bytes = Bytes(std::get<std::string>(value));
      }
      entries_.push_back(entry);
    }
    table_.num_entries = static_cast<int>(entries_.size());
    table_.entries = entries_.empty() ? nullptr : entries_.data();
  }
  EncodedTable(const EncodedTable&) = delete;
  EncodedTable& operator=(const EncodedTable&) = delete;

  const amqp_table_t& table() const { return table_; }

 private:
  std::vector<amqp_table_entry_t> entries_;
  amqp_table_t table_;
};

AmqpTable DecodeTable(const amqp_table_t& table) {
  AmqpTable out;
  for (int i = 0; i < table.num_entries; ++i) {
    const amqp_table_entry_t& e = table.entries[i];
    const amqp_field_value_t& v = e.value;
    std::string key = String(e.key);
    switch (v.kind) {
      case AMQP_FIELD_KIND_I8:
        out[key] = int64_t{v.value.i8};
        break;
      case AMQP_FIELD_KIND_U8:
        out[key] = int64_t{v.value.u8};
        break;
      case AMQP_FIELD_KIND_I16:
        out[key] = int64_t{v.value.i16};
        break;
      case AMQP_FIELD_KIND_U16:
        out[key] = int64_t{v.value.u16};
        break;
      case AMQP_FIELD_KIND_I32:
        out[key] = int64_t{v.value.i32};
        break;
      case AMQP_FIELD_KIND_U32:
        out[key] = int64_t{v.value.u32};
        break;
      case AMQP_FIELD_KIND_I64:
        out[key] = int64_t{v.value.i64};
        break;
      case AMQP_FIELD_KIND_U64:
        if (v.value.u64 <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          out[key] = static_cast<int64_t>(v.value.u64);
        }
        break;
      case AMQP_FIELD_KIND_UTF8:
      case AMQP_FIELD_KIND_BYTES:
        out[key] = String(v.value.bytes);
        break;
      default:
        break;  // not used by filemesh
    }
  }
  return out;
}

AmqpProperties DecodeProperties(const amqp_basic_properties_t& p) {
  AmqpProperties out;
  if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) out.content_type = String(p.content_type);
  if (p._flags & AMQP_BASIC_TYPE_FLAG) out.type = String(p.type);
  if (p._flags & AMQP_BASIC_CORRELATION_ID_FLAG) out.correlation_id = String(p.correlation_id);
  if (p._flags & AMQP_BASIC_REPLY_TO_FLAG) out.reply_to = String(p.reply_to);
  if (p._flags & AMQP_BASIC_EXPIRATION_FLAG) out.expiration = String(p.expiration);
  if (p._flags & AMQP_BASIC_USER_ID_FLAG) out.user_id = String(p.user_id);
  if (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) out.delivery_mode = p.delivery_mode;
  if (p._flags & AMQP_BASIC_HEADERS_FLAG) out.headers = DecodeTable(p.headers);
  return out;
}

// The status for an AMQP reply code from a channel.close or connection.close:
// 403 ACCESS_REFUSED, 404 NOT_FOUND, 405 RESOURCE_LOCKED, 406
// PRECONDITION_FAILED; anything else means the broker cannot serve now.
absl::Status ReplyCodeStatus(int code, std::string_view text) {
  const std::string message = absl::StrCat("broker refused: ", code, " ", AbslView(text));
  switch (code) {
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
      return absl::NotFoundError(message);
    case 405:
    case 406:
      return absl::FailedPreconditionError(message);
    default:
      return absl::UnavailableError(message);
  }
}

std::string LibraryError(int code) { return amqp_error_string2(code); }

// Where Debian keeps the system's trusted CAs (ca-certificates), for an
// amqps:// URL without a CA file of its own.
constexpr char kSystemCaBundle[] = "/etc/ssl/certs/ca-certificates.crt";

absl::StatusOr<amqp_socket_t*> NewSocket(amqp_connection_state_t conn, const AmqpUrl& url,
                                         const AmqpConnectionOptions& options) {
  if (!url.tls) {
    amqp_socket_t* socket = amqp_tcp_socket_new(conn);
    if (socket == nullptr) return absl::ResourceExhaustedError("amqp_tcp_socket_new failed");
    return socket;
  }
  amqp_socket_t* socket = amqp_ssl_socket_new(conn);
  if (socket == nullptr) return absl::ResourceExhaustedError("amqp_ssl_socket_new failed");
  // The broker's certificate must lead to the CA and name the URL's host.
  amqp_ssl_socket_set_verify_peer(socket, 1);
  amqp_ssl_socket_set_verify_hostname(socket, 1);
  if (amqp_ssl_socket_set_ssl_versions(socket, AMQP_TLSv1_2, AMQP_TLSvLATEST) != AMQP_STATUS_OK) {
    return absl::InternalError("rabbitmq-c refused TLS 1.2 and later");
  }
  const std::string& ca = options.tls.ca_file.empty() ? kSystemCaBundle : options.tls.ca_file;
  if (int rc = amqp_ssl_socket_set_cacert(socket, ca.c_str()); rc != AMQP_STATUS_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("AMQP CA file \"", ca, "\" cannot be used: ", LibraryError(rc)));
  }
  if (!options.tls.cert_file.empty()) {
    if (int rc = amqp_ssl_socket_set_key(socket, options.tls.cert_file.c_str(),
                                         options.tls.key_file.c_str());
        rc != AMQP_STATUS_OK) {
      return absl::InvalidArgumentError(absl::StrCat("AMQP client certificate \"",
                                                     options.tls.cert_file,
                                                     "\" cannot be used: ", LibraryError(rc)));
    }
  }
  return socket;
}

}  // namespace

struct AmqpConnection::Inbound {
  bool active = false;  // a deliver/return method came, content follows
  bool is_return = false;
  bool have_header = false;
  uint64_t body_size = 0;
  uint64_t received = 0;  // body bytes that came, held or dropped
  AmqpMessage message;
};

AmqpConnection::AmqpConnection(AmqpConnectionOptions options, AmqpSession* session)
    : options_(std::move(options)),
      session_(session),
      inbound_(std::make_unique<Inbound>()),
      return_inbound_(std::make_unique<Inbound>()) {
  if (options_.urls.empty()) options_.urls.emplace_back();  // Start refuses it
  current_url_ = options_.urls.front().Redacted();
}

AmqpConnection::~AmqpConnection() {
  Shutdown();
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status AmqpConnection::Start() {
  if (started_.exchange(true)) return absl::FailedPreconditionError("already started");
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  MutexLock lock(&shutdown_mu_);
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void AmqpConnection::Shutdown() {
  MutexLock lock(&shutdown_mu_);  // one joiner at a time
  if (!started_.load()) return;
  if (!stop_.exchange(true)) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
  StopSeeking();  // nobody waits for an attempt that will not come
}

void AmqpConnection::Wake() {
  if (wake_fd_ < 0 || wake_pending_.exchange(true)) return;
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

std::string AmqpConnection::LastError() const {
  MutexLock lock(&error_mu_);
  return last_error_;
}

std::string AmqpConnection::CurrentUrl() const {
  MutexLock lock(&error_mu_);
  return current_url_;
}

void AmqpConnection::MoveToNextUrl() {
  if (options_.urls.size() < 2) return;
  url_index_ = (url_index_ + 1) % options_.urls.size();
  MutexLock lock(&error_mu_);
  current_url_ = url().Redacted();
}

std::string AmqpConnection::BlockedReason() const {
  MutexLock lock(&error_mu_);
  return blocked_reason_;
}

// The broker's connection.blocked (`blocked`) or connection.unblocked.
void AmqpConnection::SetBlocked(bool blocked, std::string reason) {
  if (blocked == Blocked()) return;
  {
    MutexLock lock(&error_mu_);
    blocked_reason_ = std::move(reason);
  }
  blocked_.store(blocked, std::memory_order_release);
  if (blocked) {
    blocked_at_ = absl::Now();
    LogEvent(LogLevel::kWarning, "amqp_blocked",
             {{"role", options_.role}, {"url", url().Redacted()}, {"reason", BlockedReason()}});
  } else {
    LogEvent("amqp_unblocked",
             {{"role", options_.role},
              {"url", url().Redacted()},
              {"blocked_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - blocked_at_))}});
  }
}

void AmqpConnection::SetLastError(const absl::Status& status) {
  MutexLock lock(&error_mu_);
  last_error_ = status.ToString();
}

void AmqpConnection::MarkBroken(absl::Status status) {
  if (broken_.ok()) broken_ = std::move(status);
}

absl::Duration AmqpConnection::NextBackoff() {
  const absl::Duration lo = std::max(options_.reconnect_backoff_min, absl::Milliseconds(1));
  const absl::Duration hi = std::max(options_.reconnect_backoff_max, lo);
  absl::Duration cap = lo;
  for (int i = 0; i < backoff_attempt_ && cap < hi; ++i) cap *= 2;
  cap = std::min(cap, hi);
  if (backoff_attempt_ < 62) ++backoff_attempt_;
  static thread_local absl::BitGen gen;
  // Full jitter: anywhere between nothing and the cap.
  return cap * absl::Uniform<double>(gen, 0.0, 1.0);
}

void AmqpConnection::ConsumeWake() {
  // Drain the eventfd first, then allow the next Wake() to write: the other
  // order loses a Wake() that lands between the two (its flag stays set
  // with the eventfd empty, and every later Wake() is skipped). Work posted
  // before either step is picked up by the OnWake that follows.
  uint64_t value;
  (void)!read(wake_fd_, &value, sizeof(value));
  wake_pending_.store(false);
}

void AmqpConnection::WaitForWake(absl::Duration timeout) {
  pollfd fd{wake_fd_, POLLIN, 0};
  const int64_t ms = std::clamp<int64_t>(absl::ToInt64Milliseconds(timeout) + 1, 0, 60000);
  if (poll(&fd, 1, static_cast<int>(ms)) > 0 && (fd.revents & POLLIN)) ConsumeWake();
}

std::string BrokerUser(const AmqpUrl& url, const TlsOptions& tls) {
  return url.external_auth ? CertificateCommonName(tls.cert_file) : url.user;
}

// Logs in on the open socket (PLAIN, or EXTERNAL with a client
// certificate), with the client properties filemesh sends; false (broken_
// says why) when the broker refuses.
bool AmqpConnection::LogIn(const std::string& where) {
  amqp_connection_state_t conn = State(conn_);
  // Ask for basic.cancel when a consumed queue is deleted, so a consumer
  // never silently stops, and for connection.blocked/unblocked, so a broker
  // that stops reading publishes (a resource alarm) says so.
  amqp_table_entry_t capabilities[2];
  capabilities[0].key = amqp_cstring_bytes("consumer_cancel_notify");
  capabilities[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  capabilities[0].value.value.boolean = 1;
  capabilities[1].key = amqp_cstring_bytes("connection.blocked");
  capabilities[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  capabilities[1].value.value.boolean = 1;
  amqp_table_entry_t properties[2];
  properties[0].key = amqp_cstring_bytes("capabilities");
  properties[0].value.kind = AMQP_FIELD_KIND_TABLE;
  properties[0].value.value.table.num_entries = 2;
  properties[0].value.value.table.entries = capabilities;
  properties[1].key = amqp_cstring_bytes("connection_name");
  properties[1].value.kind = AMQP_FIELD_KIND_UTF8;
  properties[1].value.value.bytes = Bytes(options_.connection_name);
  amqp_table_t client_properties{2, properties};

  const double heartbeat = std::ceil(absl::ToDoubleSeconds(options_.heartbeat));
  const int heartbeat_seconds = static_cast<int>(std::clamp(heartbeat, 0.0, 65535.0));
  // EXTERNAL: the broker takes the user from the client certificate.
  // RabbitMQ ignores the identity sent with it; rabbitmq-c 0.11 cannot send
  // an empty one (it fails with "could not allocate memory"), so it is the
  // certificate's common name.
  user_ = BrokerUser(url(), options_.tls);
  const std::string& identity = user_;
  amqp_rpc_reply_t login =
      url().external_auth
          ? amqp_login_with_properties(conn, url().vhost.c_str(), 0, kFrameMax, heartbeat_seconds,
                                       &client_properties, AMQP_SASL_METHOD_EXTERNAL,
                                       identity.empty() ? "-" : identity.c_str())
          : amqp_login_with_properties(conn, url().vhost.c_str(), 0, kFrameMax, heartbeat_seconds,
                                       &client_properties, AMQP_SASL_METHOD_PLAIN,
                                       url().user.c_str(), url().password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    if (login.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        login.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
      const auto* m = static_cast<const amqp_connection_close_t*>(login.reply.decoded);
      broken_ = absl::UnavailableError(absl::StrCat("login to ", where, " vhost \"", url().vhost,
                                                    "\" refused: ", m->reply_code, " ",
                                                    String(m->reply_text)));
    } else if (login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
      broken_ = absl::UnavailableError(
          absl::StrCat("login to ", where, " failed: ", LibraryError(login.library_error)));
    } else {
      broken_ = absl::UnavailableError(absl::StrCat("login to ", where, " failed"));
    }
    return false;
  }
  return true;
}

bool AmqpConnection::Connect() {
  broken_ = absl::OkStatus();
  ResetInbound();
  amqp_connection_state_t conn = amqp_new_connection();
  if (conn == nullptr) {
    broken_ = absl::ResourceExhaustedError("amqp_new_connection failed");
    return false;
  }
  conn_ = conn;
  const AmqpUrl& target = url();
  const std::string where = absl::StrCat(
      "AMQP broker ", target.host.find(':') == std::string::npos ? "" : "[", target.host,
      target.host.find(':') == std::string::npos ? "" : "]", ":", target.port);
  absl::StatusOr<amqp_socket_t*> made = NewSocket(conn, target, options_);
  if (!made.ok()) {
    broken_ = made.status();
    return false;
  }
  amqp_socket_t* socket = *made;
  timeval connect_timeout = absl::ToTimeval(options_.connect_timeout);
  int rc = amqp_socket_open_noblock(socket, target.host.c_str(), target.port, &connect_timeout);
  if (rc != AMQP_STATUS_OK) {
    broken_ =
        absl::UnavailableError(absl::StrCat("cannot connect to ", where, ": ", LibraryError(rc)));
    return false;
  }
  amqp_set_handshake_timeout(conn, &connect_timeout);
  timeval rpc_timeout = absl::ToTimeval(options_.rpc_timeout);
  amqp_set_rpc_timeout(conn, &rpc_timeout);

  if (!LogIn(where)) return false;
  heartbeat_seconds_ = amqp_get_heartbeat(conn);

  amqp_channel_open(conn, kMainChannel);
  if (!RpcStatus("open channel 1", kMainChannel).ok()) return false;
  amqp_channel_open(conn, kTopologyChannel);
  if (!RpcStatus("open channel 2", kTopologyChannel).ok()) return false;
  publish_channel_ = kFirstPublishChannel;
  return OpenPublishChannel().ok() && broken_.ok();
}

void AmqpConnection::Disconnect(bool polite) {
  if (conn_ == nullptr) return;
  amqp_connection_state_t conn = State(conn_);
  if (polite && broken_.ok()) {
    timeval close_timeout = absl::ToTimeval(absl::Seconds(2));
    amqp_set_rpc_timeout(conn, &close_timeout);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(conn);
  conn_ = nullptr;
  ResetInbound();
  blocked_.store(false, std::memory_order_release);  // a new connection starts unblocked
}

absl::Status AmqpConnection::RpcStatus(std::string_view what, int channel) {
  amqp_connection_state_t conn = State(conn_);
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return absl::OkStatus();
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: {
      absl::Status status = absl::UnavailableError(
          absl::StrCat(AbslView(what), ": connection lost: ", LibraryError(reply.library_error)));
      MarkBroken(status);
      return status;
    }
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* m = static_cast<const amqp_connection_close_t*>(reply.reply.decoded);
        absl::Status status = absl::UnavailableError(
            absl::StrCat(AbslView(what), ": broker closed the connection: ", m->reply_code, " ",
                         String(m->reply_text)));
        amqp_connection_close_ok_t ok;
        amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        MarkBroken(status);
        return status;
      }
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
        const absl::Status refused = ReplyCodeStatus(m->reply_code, String(m->reply_text));
        absl::Status status(refused.code(), absl::StrCat(AbslView(what), ": ", refused.message()));
        amqp_channel_close_ok_t ok;
        const auto ch = static_cast<amqp_channel_t>(channel);
        if (amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != AMQP_STATUS_OK) {
          MarkBroken(absl::UnavailableError(absl::StrCat(AbslView(what), ": connection lost")));
          return status;
        }
        if (ch == kTopologyChannel) {
          // Only the topology channel is lost: open it again.
          amqp_channel_open(conn, kTopologyChannel);
          if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
            MarkBroken(absl::UnavailableError("cannot reopen channel 2"));
          }
        } else {
          MarkBroken(absl::UnavailableError(
              absl::StrCat("channel ", channel, " closed by the broker: ", status.message())));
        }
        return status;
      }
      break;
    case AMQP_RESPONSE_NONE:
      break;
  }
  absl::Status status = absl::UnavailableError(absl::StrCat(AbslView(what), ": unexpected reply"));
  MarkBroken(status);
  return status;
}

void AmqpConnection::StopSeeking() { seeking_.store(false, std::memory_order_release); }

bool AmqpConnection::Seeking() const { return seeking_.load(std::memory_order_acquire); }

// Connects when there is no connection and the backoff is over. True when
// the connection is up; false when the loop should go round again.
bool AmqpConnection::EnsureConnected(absl::Time* next_attempt) {
  if (conn_ != nullptr) return true;
  session_->OnWake(*this);  // fails work queued while down
  const absl::Time now = absl::Now();
  if (now < *next_attempt) {
    WaitForWake(*next_attempt - now);
    return false;
  }
  absl::Status status = absl::OkStatus();
  bool session_connected = false;  // OnConnected ran: OnDisconnected must follow
  if (!Connect()) {
    status = broken_;
  } else {
    ++generation_;
    session_connected = true;
    status = session_->OnConnected(*this);
    if (status.ok() && !broken_.ok()) status = broken_;
  }
  if (!status.ok()) {
    SetLastError(status);
    Disconnect(false);
    if (session_connected) session_->OnDisconnected(status);
    // Every broker has had its chance since the connection was lost (or
    // since the start): calls stop waiting for one.
    if (++failed_since_up_ >= options_.urls.size()) StopSeeking();
    const absl::Duration backoff = NextBackoff();
    LogConnectFailed(status, backoff);
    MoveToNextUrl();
    *next_attempt = absl::Now() + backoff;
    return false;
  }
  connected_at_ = absl::Now();
  read_socket_ = true;
  failed_since_up_ = 0;
  connected_.store(true, std::memory_order_release);
  // For a server this means its queues are being consumed.
  LogEvent("amqp_connected", {{"role", options_.role}, {"url", url().Redacted()}});
  StopSeeking();
  return true;
}

// The connection broke: tells the session, and schedules the next attempt.
void AmqpConnection::HandleBroken(absl::Time* next_attempt) {
  const absl::Status why = broken_;
  SetLastError(why);
  connected_.store(false, std::memory_order_release);
  const bool lived = absl::Now() - connected_at_ >= options_.reconnect_backoff_max;
  // Until every broker has been tried once, calls wait for the next
  // connection instead of failing (set before the session hears of the loss,
  // so that what it requeues is kept).
  seeking_.store(true, std::memory_order_release);
  failed_since_up_ = 0;
  Disconnect(false);
  session_->OnDisconnected(why);
  if (lived) backoff_attempt_ = 0;
  const absl::Duration backoff = NextBackoff();
  const std::string lost_url = url().Redacted();
  MoveToNextUrl();
  LogEvent(LogLevel::kWarning, "amqp_connection_lost",
           {{"role", options_.role},
            {"url", lost_url},
            {"error", StdView(why.message())},
            {"next_url", url().Redacted()},
            {"retry_in_ms", absl::StrCat(absl::ToInt64Milliseconds(backoff))}});
  *next_attempt = absl::Now() + backoff;
}

// Waits for the socket, a wake-up or half a heartbeat, whichever is first.
void AmqpConnection::PollSocket() {
  amqp_connection_state_t conn = State(conn_);
  int timeout_ms = heartbeat_seconds_ > 0 ? heartbeat_seconds_ * 500 : 1000;
  if (wake_by_ != absl::InfiniteFuture()) {
    const int64_t until = absl::ToInt64Milliseconds(
        absl::Ceil(std::max(wake_by_ - absl::Now(), absl::ZeroDuration()), absl::Milliseconds(1)));
    if (until < timeout_ms) timeout_ms = static_cast<int>(until);
    // This round's OnWake comes after the poll; a later WakeBy sets it anew.
    wake_by_ = absl::InfiniteFuture();
  }
  if (amqp_frames_enqueued(conn) || amqp_data_in_buffer(conn)) {
    timeout_ms = 0;
  } else {
    amqp_maybe_release_buffers(conn);
  }
  pollfd fds[2] = {{amqp_get_sockfd(conn), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  const int ready = poll(fds, 2, timeout_ms);
  if (ready > 0 && (fds[1].revents & POLLIN)) ConsumeWake();
  // Read the socket when it has something, and at least every half
  // heartbeat, when rabbitmq-c sends our heartbeat and checks the broker's.
  const absl::Time now = absl::Now();
  if (ready == 0 || (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0 ||
      now - last_socket_read_ >= absl::Milliseconds(timeout_ms)) {
    read_socket_ = true;
  }
}

void AmqpConnection::Run() {
  absl::Time next_attempt = absl::Now();
  while (!stop_.load()) {
    // Nothing a broker or a publisher sends may end the process: an
    // exception out of a round (bad_alloc, or one a library throws on its
    // input) drops the connection, which starts over after a backoff.
    try {
      RunRound(&next_attempt);
    } catch (const std::exception& e) {
      OnRoundFailed(e.what(), &next_attempt);
    } catch (...) {
      OnRoundFailed("an exception that is not a std::exception", &next_attempt);
    }
  }
  connected_.store(false, std::memory_order_release);
  if (conn_ != nullptr) {
    Disconnect(true);
    session_->OnDisconnected(absl::UnavailableError("AMQP connection shut down"));
    LogEvent("amqp_closed", {{"role", options_.role}, {"url", url().Redacted()}});
  }
}

void AmqpConnection::RunRound(absl::Time* next_attempt) {
  if (!EnsureConnected(next_attempt)) return;
  DrainFrames();
  if (broken_.ok()) session_->OnWake(*this);
  // Publishes may have read frames (rabbitmq-c's heartbeat check).
  if (broken_.ok()) DrainFrames();
  if (broken_.ok()) session_->OnIdle(*this);
  if (!broken_.ok()) return HandleBroken(next_attempt);
  PollSocket();
}

void AmqpConnection::OnRoundFailed(const char* what, absl::Time* next_attempt) {
  LogEvent(LogLevel::kError, "amqp_round_failed",
           {{"role", options_.role}, {"url", url().Redacted()}, {"error", what}});
  ResetInbound();
  MarkBroken(absl::InternalError(absl::StrCat("AMQP connection dropped after an error: ", what)));
  if (conn_ != nullptr) {
    HandleBroken(next_attempt);
  } else {
    broken_ = absl::OkStatus();
    *next_attempt = absl::Now() + NextBackoff();
  }
}

void AmqpConnection::LogConnectFailed(const absl::Status& why, absl::Duration retry_in) {
  LogEvent(LogLevel::kWarning, "amqp_connect_failed",
           {{"role", options_.role},
            {"url", url().Redacted()},
            {"attempt", absl::StrCat(backoff_attempt_)},
            {"error", StdView(why.message())},
            {"retry_in_ms", absl::StrCat(absl::ToInt64Milliseconds(retry_in))}});
}

void AmqpConnection::DrainFrames() {
  amqp_connection_state_t conn = State(conn_);
  timeval zero{0, 0};
  for (int i = 0; i < kMaxFramesPerRound && broken_.ok(); ++i) {
    if (!amqp_frames_enqueued(conn) && !amqp_data_in_buffer(conn)) {
      // Everything read so far is handled. Go to the socket once per round
      // at most: after that poll() tells when it has more, which spares a
      // recv() and a poll() that would find nothing.
      if (!read_socket_) return;
      read_socket_ = false;
      last_socket_read_ = absl::Now();
    }
    amqp_frame_t frame;
    const int rc = amqp_simple_wait_frame_noblock(conn, &frame, &zero);
    if (rc == AMQP_STATUS_TIMEOUT) return;
    if (rc != AMQP_STATUS_OK) {
      MarkBroken(absl::UnavailableError(absl::StrCat("AMQP connection lost: ", LibraryError(rc))));
      return;
    }
    HandleFrame(&frame);
  }
}

void AmqpConnection::ResetInbound() {
  *inbound_ = Inbound();
  *return_inbound_ = Inbound();
}

AmqpConnection::Inbound& AmqpConnection::InboundOf(const void* frame) {
  return static_cast<const amqp_frame_t*>(frame)->channel == kMainChannel ? *inbound_
                                                                          : *return_inbound_;
}

void AmqpConnection::ProtocolError(std::string_view what) {
  MarkBroken(absl::UnavailableError(absl::StrCat("AMQP protocol error: ", AbslView(what))));
}

// The message being assembled is whole: to the session.
void AmqpConnection::CompleteInbound(Inbound& in) {
  AmqpMessage message = std::move(in.message);
  const bool is_return = in.is_return;
  in = Inbound();
  if (is_return) {
    session_->OnReturn(*this, std::move(message));
  } else {
    session_->OnDelivery(*this, std::move(message));
  }
}

void AmqpConnection::HandleFrame(const void* raw) {
  const auto& frame = *static_cast<const amqp_frame_t*>(raw);
  // Channel 1 (deliveries) and the publish channel (confirms, returns);
  // frames of a publish channel left behind are dropped.
  const bool ours = frame.channel == kMainChannel || frame.channel == publish_channel_;
  switch (frame.frame_type) {
    case AMQP_FRAME_METHOD:
      if (frame.channel == 0) return HandleConnectionMethod(raw);
      if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) return HandleChannelClose(raw);
      if (ours) HandleMainChannelMethod(raw);
      return;
    case AMQP_FRAME_HEADER:
      if (ours) HandleContentHeader(raw);
      return;
    case AMQP_FRAME_BODY:
      if (ours) HandleContentBody(raw);
      return;
    default:
      return;
  }
}

void AmqpConnection::HandleConnectionMethod(const void* raw) {
  const auto& frame = *static_cast<const amqp_frame_t*>(raw);
  const amqp_method_t& method = frame.payload.method;
  if (method.id == AMQP_CONNECTION_BLOCKED_METHOD) {
    const auto* m = static_cast<const amqp_connection_blocked_t*>(method.decoded);
    SetBlocked(true, String(m->reason));
    return session_->OnBlocked(*this, BlockedReason());
  }
  if (method.id == AMQP_CONNECTION_UNBLOCKED_METHOD) {
    SetBlocked(false, "");
    return session_->OnUnblocked(*this);
  }
  if (method.id != AMQP_CONNECTION_CLOSE_METHOD) return;
  const auto* m = static_cast<const amqp_connection_close_t*>(method.decoded);
  absl::Status status = absl::UnavailableError(
      absl::StrCat("broker closed the connection: ", m->reply_code, " ", String(m->reply_text)));
  amqp_connection_close_ok_t ok;
  amqp_send_method(State(conn_), 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
  MarkBroken(std::move(status));
}

void AmqpConnection::HandleChannelClose(const void* raw) {
  const auto& frame = *static_cast<const amqp_frame_t*>(raw);
  const auto* m = static_cast<const amqp_channel_close_t*>(frame.payload.method.decoded);
  absl::Status status = absl::UnavailableError(absl::StrCat(
      "broker closed channel ", frame.channel, ": ", m->reply_code, " ", String(m->reply_text)));
  amqp_channel_close_ok_t ok;
  amqp_send_method(State(conn_), frame.channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
  // A publish channel left behind may close as it likes.
  if (frame.channel >= kFirstPublishChannel && frame.channel != publish_channel_) return;
  MarkBroken(std::move(status));
}

void AmqpConnection::HandleMainChannelMethod(const void* raw) {
  const amqp_method_t& method = static_cast<const amqp_frame_t*>(raw)->payload.method;
  Inbound& in = InboundOf(raw);
  switch (method.id) {
    case AMQP_BASIC_DELIVER_METHOD: {
      if (in.active) return ProtocolError("basic.deliver inside a content");
      const auto* m = static_cast<const amqp_basic_deliver_t*>(method.decoded);
      in.active = true;
      in.message.delivery_tag = m->delivery_tag;
      in.message.redelivered = m->redelivered != 0;
      in.message.consumer_tag = String(m->consumer_tag);
      in.message.exchange = String(m->exchange);
      in.message.routing_key = String(m->routing_key);
      return;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      if (in.active) return ProtocolError("basic.return inside a content");
      const auto* m = static_cast<const amqp_basic_return_t*>(method.decoded);
      in.active = true;
      in.is_return = true;
      in.message.reply_code = m->reply_code;
      in.message.reply_text = String(m->reply_text);
      in.message.exchange = String(m->exchange);
      in.message.routing_key = String(m->routing_key);
      return;
    }
    case AMQP_BASIC_ACK_METHOD: {
      const auto* m = static_cast<const amqp_basic_ack_t*>(method.decoded);
      session_->OnConfirm(*this, m->delivery_tag, m->multiple != 0, true);
      return;
    }
    case AMQP_BASIC_NACK_METHOD: {
      const auto* m = static_cast<const amqp_basic_nack_t*>(method.decoded);
      session_->OnConfirm(*this, m->delivery_tag, m->multiple != 0, false);
      return;
    }
    case AMQP_BASIC_CANCEL_METHOD: {
      // The broker cancelled a consumer (its queue was deleted): start
      // over, which declares the queue again and consumes it.
      const auto* m = static_cast<const amqp_basic_cancel_t*>(method.decoded);
      MarkBroken(absl::UnavailableError(absl::StrCat(
          "broker cancelled consumer ", String(m->consumer_tag), " (queue deleted?)")));
      return;
    }
    default:
      return;
  }
}

void AmqpConnection::HandleContentHeader(const void* raw) {
  const auto& frame = *static_cast<const amqp_frame_t*>(raw);
  Inbound& in = InboundOf(raw);
  if (!in.active || in.have_header) return ProtocolError("unexpected content header");
  in.have_header = true;
  in.body_size = frame.payload.properties.body_size;
  in.message.properties = DecodeProperties(
      *static_cast<const amqp_basic_properties_t*>(frame.payload.properties.decoded));
  in.message.body_size = in.body_size;
  // A body above the limit is never held, whatever its declared size: its
  // frames are counted and dropped, and the session refuses the message.
  in.message.body_dropped = in.body_size > options_.max_body_bytes;
  if (!in.message.body_dropped) in.message.body.reserve(in.body_size);
  if (in.body_size == 0) CompleteInbound(in);
}

void AmqpConnection::HandleContentBody(const void* raw) {
  const amqp_bytes_t& fragment = static_cast<const amqp_frame_t*>(raw)->payload.body_fragment;
  Inbound& in = InboundOf(raw);
  if (!in.active || !in.have_header) return ProtocolError("unexpected content body");
  in.received += fragment.len;
  if (in.received > in.body_size) return ProtocolError("body exceeds its size");
  if (!in.message.body_dropped) {
    in.message.body.append(static_cast<const char*>(fragment.bytes), fragment.len);
  }
  if (in.received == in.body_size) CompleteInbound(in);
}

absl::StatusOr<uint64_t> AmqpConnection::Publish(std::string_view exchange,
                                                 std::string_view routing_key, bool mandatory,
                                                 const AmqpProperties& properties,
                                                 std::string_view body) {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof(p));
  auto set = [&p](amqp_flags_t flag, amqp_bytes_t* field, const std::string& value) {
    if (value.empty()) return;
    p._flags |= flag;
    *field = Bytes(value);
  };
  set(AMQP_BASIC_CONTENT_TYPE_FLAG, &p.content_type, properties.content_type);
  set(AMQP_BASIC_TYPE_FLAG, &p.type, properties.type);
  set(AMQP_BASIC_CORRELATION_ID_FLAG, &p.correlation_id, properties.correlation_id);
  set(AMQP_BASIC_REPLY_TO_FLAG, &p.reply_to, properties.reply_to);
  set(AMQP_BASIC_EXPIRATION_FLAG, &p.expiration, properties.expiration);
  set(AMQP_BASIC_USER_ID_FLAG, &p.user_id, properties.user_id);
  if (properties.delivery_mode != 0) {
    p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = properties.delivery_mode;
  }
  EncodedTable headers(properties.headers);
  if (!properties.headers.empty()) {
    p._flags |= AMQP_BASIC_HEADERS_FLAG;
    p.headers = headers.table();
  }
  const int rc = amqp_basic_publish(State(conn_), publish_channel_, Bytes(exchange),
                                    Bytes(routing_key), mandatory ? 1 : 0, 0, &p, Bytes(body));
  if (rc != AMQP_STATUS_OK) {
    absl::Status status =
        absl::UnavailableError(absl::StrCat("AMQP publish failed: ", LibraryError(rc)));
    MarkBroken(status);
    return status;
  }
  return ++publish_seq_;
}

absl::Status AmqpConnection::OpenPublishChannel() {
  amqp_connection_state_t conn = State(conn_);
  amqp_channel_open(conn, publish_channel_);
  absl::Status status =
      RpcStatus(absl::StrCat("open channel ", publish_channel_), publish_channel_);
  if (!status.ok()) return status;
  amqp_confirm_select(conn, publish_channel_);
  status = RpcStatus("confirm.select", publish_channel_);
  if (!status.ok()) return status;
  publish_seq_ = 0;
  return absl::OkStatus();
}

absl::Status AmqpConnection::ResetPublishChannel() {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  const amqp_channel_t old = publish_channel_;
  amqp_channel_close(State(conn_), old, AMQP_REPLY_SUCCESS);
  // A failed close (the broker closed it first) leaves the connection up;
  // the channel is left behind either way.
  if (absl::Status closed = RpcStatus(absl::StrCat("close channel ", old), old);
      !closed.ok() && !usable()) {
    return closed;
  }
  publish_channel_ = old == kLastPublishChannel ? kFirstPublishChannel : old + 1;
  *return_inbound_ = Inbound();
  absl::Status status = OpenPublishChannel();
  if (!status.ok()) {
    MarkBroken(absl::UnavailableError(
        absl::StrCat("cannot open a new publish channel: ", status.message())));
  }
  return status;
}

absl::StatusOr<uint32_t> AmqpConnection::QueueMessageCount(std::string_view queue) {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  const amqp_queue_declare_ok_t* ok = amqp_queue_declare(
      State(conn_), kTopologyChannel, Bytes(queue), /*passive=*/1, 0, 0, 0, amqp_empty_table);
  absl::Status status = RpcStatus(absl::StrCat("declare queue \"", AbslView(queue), "\" (passive)"),
                                  kTopologyChannel);
  if (!status.ok()) return status;
  if (ok == nullptr) return absl::UnavailableError("queue.declare: no reply");
  return ok->message_count;
}

absl::Status AmqpConnection::Ack(uint64_t delivery_tag, bool multiple) {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  const int rc = amqp_basic_ack(State(conn_), kMainChannel, delivery_tag, multiple ? 1 : 0);
  if (rc == AMQP_STATUS_OK) return absl::OkStatus();
  absl::Status status = absl::UnavailableError(absl::StrCat("AMQP ack failed: ", LibraryError(rc)));
  MarkBroken(status);
  return status;
}

absl::Status AmqpConnection::Reject(uint64_t delivery_tag, bool requeue) {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  const int rc = amqp_basic_reject(State(conn_), kMainChannel, delivery_tag, requeue ? 1 : 0);
  if (rc == AMQP_STATUS_OK) return absl::OkStatus();
  absl::Status status =
      absl::UnavailableError(absl::StrCat("AMQP reject failed: ", LibraryError(rc)));
  MarkBroken(status);
  return status;
}

absl::Status AmqpConnection::DeclareExchange(std::string_view name, std::string_view type,
                                             bool durable) {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  amqp_exchange_declare(State(conn_), kTopologyChannel, Bytes(name), Bytes(type), 0,
                        durable ? 1 : 0, 0, 0, amqp_empty_table);
  return RpcStatus(absl::StrCat("declare exchange \"", AbslView(name), "\""), kTopologyChannel);
}

absl::Status AmqpConnection::DeclareQueue(const AmqpQueueSpec& spec) {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  EncodedTable arguments(spec.arguments);
  amqp_queue_declare(State(conn_), kTopologyChannel, Bytes(spec.name), 0, spec.durable ? 1 : 0, 0,
                     0, arguments.table());
  return RpcStatus(absl::StrCat("declare queue \"", spec.name, "\""), kTopologyChannel);
}

absl::Status AmqpConnection::BindQueue(std::string_view queue, std::string_view exchange,
                                       std::string_view routing_key) {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  amqp_queue_bind(State(conn_), kTopologyChannel, Bytes(queue), Bytes(exchange), Bytes(routing_key),
                  amqp_empty_table);
  return RpcStatus(absl::StrCat("bind queue \"", AbslView(queue), "\""), kTopologyChannel);
}

absl::Status AmqpConnection::Qos(uint16_t prefetch_count) {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  amqp_basic_qos(State(conn_), kMainChannel, 0, prefetch_count, 0);
  return RpcStatus("basic.qos", kMainChannel);
}

absl::StatusOr<std::string> AmqpConnection::Consume(std::string_view queue, bool exclusive) {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  const amqp_basic_consume_ok_t* ok =
      amqp_basic_consume(State(conn_), kMainChannel, Bytes(queue), amqp_empty_bytes, 0, 0,
                         exclusive ? 1 : 0, amqp_empty_table);
  absl::Status status = RpcStatus(absl::StrCat("consume \"", AbslView(queue), "\""), kMainChannel);
  if (!status.ok()) return status;
  if (ok == nullptr) return absl::UnavailableError("basic.consume: no reply");
  return String(ok->consumer_tag);
}

absl::Status AmqpConnection::Cancel(std::string_view consumer_tag) {
  if (!usable()) return absl::UnavailableError("AMQP broker not connected");
  amqp_basic_cancel(State(conn_), kMainChannel, Bytes(consumer_tag));
  return RpcStatus(absl::StrCat("cancel consumer ", AbslView(consumer_tag)), kMainChannel);
}

}  // namespace filemesh::internal
