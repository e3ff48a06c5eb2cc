// What a publisher controls in an AMQP message the library reads: the
// `expiration` text, the run-time header and a reply's status headers, built
// from the input as a table of integers and strings (the values the
// connection decodes).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rpc/amqp_connection.h"
#include "rpc/amqp_envelope.h"

namespace {

// Takes `n` bytes (or what is left) off the front of `in`.
std::string_view Take(std::string_view* in, size_t n) {
  const std::string_view out = in->substr(0, n);
  in->remove_prefix(out.size());
  return out;
}

int64_t Int(std::string_view* in) {
  int64_t v = 0;
  for (const char c : Take(in, 8)) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t expiration_length = in.empty() ? 0 : static_cast<uint8_t>(in[0]) % 32;
  Take(&in, 1);
  absl::Duration out;
  (void)filemesh::internal::ParseExpiration(Take(&in, expiration_length), &out);

  filemesh::internal::AmqpMessage reply;
  static const char* const kNames[] = {"filemesh-timeout-ms", "grpc-status", "grpc-message",
                                       "x-redeliveries", "other"};
  for (int i = 0; i < 8 && !in.empty(); ++i) {
    const auto selector = static_cast<uint8_t>(Take(&in, 1)[0]);
    const std::string name = kNames[selector % 5];
    if ((selector & 0x80) != 0) {
      reply.properties.headers[name] = Int(&in);
    } else {
      reply.properties.headers[name] = std::string(Take(&in, selector % 24));
    }
  }
  (void)filemesh::internal::ParseTimeoutHeader(reply.properties.headers, &out);
  reply.body = std::string(in);
  (void)filemesh::internal::ReplyOutcome(reply);
  return 0;
}
