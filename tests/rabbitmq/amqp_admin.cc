#include "rabbitmq/amqp_admin.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <cstring>

#include "gtest/gtest.h"
#include "rpc/amqp_url.h"

namespace filemesh::testing {
namespace {

constexpr amqp_channel_t kPublishChannel = 1;  // confirm mode
constexpr amqp_channel_t kOtherChannel = 2;

amqp_connection_state_t State(void* conn) { return static_cast<amqp_connection_state_t>(conn); }

amqp_bytes_t Bytes(const std::string& s) {
  amqp_bytes_t b;
  b.len = s.size();
  b.bytes = const_cast<char*>(s.data());
  return b;
}

std::string String(amqp_bytes_t b) {
  return b.len == 0 ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}

RawMessage Decode(const amqp_message_t& m) {
  RawMessage out;
  const amqp_basic_properties_t& p = m.properties;
  if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) out.content_type = String(p.content_type);
  if (p._flags & AMQP_BASIC_TYPE_FLAG) out.type = String(p.type);
  if (p._flags & AMQP_BASIC_CORRELATION_ID_FLAG) out.correlation_id = String(p.correlation_id);
  if (p._flags & AMQP_BASIC_REPLY_TO_FLAG) out.reply_to = String(p.reply_to);
  if (p._flags & AMQP_BASIC_USER_ID_FLAG) out.user_id = String(p.user_id);
  if (p._flags & AMQP_BASIC_EXPIRATION_FLAG) out.expiration = String(p.expiration);
  if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
    for (int i = 0; i < p.headers.num_entries; ++i) {
      const amqp_table_entry_t& e = p.headers.entries[i];
      const std::string key = String(e.key);
      switch (e.value.kind) {
        case AMQP_FIELD_KIND_I8:
          out.int_headers[key] = e.value.value.i8;
          break;
        case AMQP_FIELD_KIND_U8:
          out.int_headers[key] = e.value.value.u8;
          break;
        case AMQP_FIELD_KIND_I16:
          out.int_headers[key] = e.value.value.i16;
          break;
        case AMQP_FIELD_KIND_U16:
          out.int_headers[key] = e.value.value.u16;
          break;
        case AMQP_FIELD_KIND_I32:
          out.int_headers[key] = e.value.value.i32;
          break;
        case AMQP_FIELD_KIND_U32:
          out.int_headers[key] = e.value.value.u32;
          break;
        case AMQP_FIELD_KIND_I64:
          out.int_headers[key] = e.value.value.i64;
          break;
        case AMQP_FIELD_KIND_UTF8:
        case AMQP_FIELD_KIND_BYTES:
          out.string_headers[key] = String(e.value.value.bytes);
          break;
        default:
          break;
      }
    }
  }
  out.body = String(m.body);
  return out;
}

}  // namespace

std::unique_ptr<AmqpAdmin> AmqpAdmin::Connect(const std::string& url, std::string* error) {
  auto parsed = internal::ParseAmqpUrl(url);
  if (!parsed.ok()) {
    *error = parsed.status().ToString();
    return nullptr;
  }
  std::unique_ptr<AmqpAdmin> admin(new AmqpAdmin);
  amqp_connection_state_t conn = amqp_new_connection();
  admin->conn_ = conn;
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  timeval timeout{10, 0};
  if (socket == nullptr || amqp_socket_open_noblock(socket, parsed->host.c_str(), parsed->port,
                                                    &timeout) != AMQP_STATUS_OK) {
    *error = "cannot connect to " + parsed->Redacted();
    return nullptr;
  }
  amqp_set_rpc_timeout(conn, &timeout);
  amqp_rpc_reply_t login =
      amqp_login(conn, parsed->vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                 parsed->user.c_str(), parsed->password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    *error = "cannot log in to " + parsed->Redacted();
    return nullptr;
  }
  amqp_channel_open(conn, kPublishChannel);
  amqp_confirm_select(conn, kPublishChannel);
  amqp_channel_open(conn, kOtherChannel);
  if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
    *error = "cannot open channels";
    return nullptr;
  }
  return admin;
}

AmqpAdmin::~AmqpAdmin() {
  if (conn_ == nullptr) return;
  amqp_connection_close(State(conn_), AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(State(conn_));
}

bool AmqpAdmin::Ok(const char* what) {
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(State(conn_));
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return true;
  ADD_FAILURE() << "AmqpAdmin: " << what << " failed (reply type " << reply.reply_type << ")";
  return false;
}

bool AmqpAdmin::Publish(const std::string& routing_key, const RawMessage& message) {
  amqp_basic_properties_t p;
  std::memset(&p, 0, sizeof(p));
  auto set = [&p](amqp_flags_t flag, amqp_bytes_t* field, const std::string& value) {
    if (value.empty()) return;
    p._flags |= flag;
    *field = Bytes(value);
  };
  set(AMQP_BASIC_CONTENT_TYPE_FLAG, &p.content_type, message.content_type);
  set(AMQP_BASIC_TYPE_FLAG, &p.type, message.type);
  set(AMQP_BASIC_CORRELATION_ID_FLAG, &p.correlation_id, message.correlation_id);
  set(AMQP_BASIC_REPLY_TO_FLAG, &p.reply_to, message.reply_to);
  set(AMQP_BASIC_USER_ID_FLAG, &p.user_id, message.user_id);
  set(AMQP_BASIC_EXPIRATION_FLAG, &p.expiration, message.expiration);
  std::vector<amqp_table_entry_t> headers;
  for (const auto& [key, value] : message.int_headers) {
    amqp_table_entry_t entry;
    entry.key = Bytes(key);
    entry.value.kind = AMQP_FIELD_KIND_I64;
    entry.value.value.i64 = value;
    headers.push_back(entry);
  }
  for (const auto& [key, value] : message.string_headers) {
    amqp_table_entry_t entry;
    entry.key = Bytes(key);
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = Bytes(value);
    headers.push_back(entry);
  }
  if (!headers.empty()) {
    p._flags |= AMQP_BASIC_HEADERS_FLAG;
    p.headers.num_entries = static_cast<int>(headers.size());
    p.headers.entries = headers.data();
  }
  amqp_connection_state_t conn = State(conn_);
  if (amqp_basic_publish(conn, kPublishChannel, amqp_empty_bytes, Bytes(routing_key), 0, 0, &p,
                         Bytes(message.body)) != AMQP_STATUS_OK) {
    ADD_FAILURE() << "AmqpAdmin: publish failed";
    return false;
  }
  // The confirm: the next method on the publish channel.
  timeval timeout{10, 0};
  amqp_frame_t frame;
  for (int i = 0; i < 100; ++i) {
    if (amqp_simple_wait_frame_noblock(conn, &frame, &timeout) != AMQP_STATUS_OK) break;
    if (frame.frame_type != AMQP_FRAME_METHOD || frame.channel != kPublishChannel) continue;
    if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) return true;
    break;
  }
  ADD_FAILURE() << "AmqpAdmin: no confirm for a publish to " << routing_key;
  return false;
}

bool AmqpAdmin::DeclareQueue(const std::string& queue) {
  amqp_queue_declare(State(conn_), kOtherChannel, Bytes(queue), 0, 1, 0, 0, amqp_empty_table);
  return Ok("queue.declare");
}

bool AmqpAdmin::DeclareRefusingQuorumQueue(const std::string& queue) {
  amqp_table_entry_t entries[3];
  entries[0].key = amqp_cstring_bytes("x-queue-type");
  entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
  entries[0].value.value.bytes = amqp_cstring_bytes("quorum");
  entries[1].key = amqp_cstring_bytes("x-max-length");
  entries[1].value.kind = AMQP_FIELD_KIND_I64;
  entries[1].value.value.i64 = 0;
  entries[2].key = amqp_cstring_bytes("x-overflow");
  entries[2].value.kind = AMQP_FIELD_KIND_UTF8;
  entries[2].value.value.bytes = amqp_cstring_bytes("reject-publish");
  amqp_table_t arguments{3, entries};
  amqp_queue_declare(State(conn_), kOtherChannel, Bytes(queue), 0, 1, 0, 0, arguments);
  return Ok("queue.declare");
}

bool AmqpAdmin::DeleteQueue(const std::string& queue) {
  amqp_queue_delete(State(conn_), kOtherChannel, Bytes(queue), 0, 0);
  return Ok("queue.delete");
}

AmqpAdmin::QueueStats AmqpAdmin::Stats(const std::string& queue) {
  amqp_connection_state_t conn = State(conn_);
  const amqp_queue_declare_ok_t* ok =
      amqp_queue_declare(conn, kOtherChannel, Bytes(queue), 1, 0, 0, 0, amqp_empty_table);
  QueueStats stats;
  if (ok != nullptr) {
    stats.messages = ok->message_count;
    stats.consumers = ok->consumer_count;
    return stats;
  }
  // A passive declare of a missing queue closes the channel: open it again.
  amqp_channel_close_ok_t close_ok;
  amqp_send_method(conn, kOtherChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
  amqp_channel_open(conn, kOtherChannel);
  return stats;
}

std::vector<RawMessage> AmqpAdmin::Take(const std::string& queue, size_t count,
                                        absl::Duration timeout) {
  std::vector<RawMessage> out;
  amqp_connection_state_t conn = State(conn_);
  amqp_basic_qos(conn, kOtherChannel, 0, 1, 0);
  const amqp_basic_consume_ok_t* consume = amqp_basic_consume(
      conn, kOtherChannel, Bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  if (consume == nullptr) {
    ADD_FAILURE() << "AmqpAdmin: cannot consume " << queue;
    return out;
  }
  const std::string tag = String(consume->consumer_tag);
  const absl::Time deadline = absl::Now() + timeout;
  while (out.size() < count) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    timeval tv = absl::ToTimeval(left);
    amqp_envelope_t envelope;
    amqp_maybe_release_buffers(conn);
    const amqp_rpc_reply_t reply = amqp_consume_message(conn, &envelope, &tv, 0);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) break;  // timeout or trouble
    out.push_back(Decode(envelope.message));
    amqp_basic_ack(conn, kOtherChannel, envelope.delivery_tag, 0);
    amqp_destroy_envelope(&envelope);
  }
  amqp_basic_cancel(conn, kOtherChannel, Bytes(tag));
  // Deliveries that raced the cancel were not acked: they go back to the
  // queue when the channel is recovered or closed, so reopen it.
  amqp_channel_close(conn, kOtherChannel, AMQP_REPLY_SUCCESS);
  amqp_channel_open(conn, kOtherChannel);
  amqp_frame_t stale;
  while (amqp_frames_enqueued(conn)) amqp_simple_wait_frame(conn, &stale);
  return out;
}

}  // namespace filemesh::testing
