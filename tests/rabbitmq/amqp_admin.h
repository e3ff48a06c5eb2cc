// A blocking rabbitmq-c connection for tests to look at the broker from the
// outside: publish raw messages, read queues, delete queues.

#ifndef FILEMESH_TESTS_RABBITMQ_AMQP_ADMIN_H_
#define FILEMESH_TESTS_RABBITMQ_AMQP_ADMIN_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace filemesh::testing {

struct RawMessage {
  std::string content_type;
  std::string type;
  std::string correlation_id;
  std::string reply_to;
  std::string expiration;
  std::string user_id;
  std::map<std::string, int64_t> int_headers;
  std::map<std::string, std::string> string_headers;
  std::string body;
};

class AmqpAdmin {
 public:
  // Null (with `error`) if it cannot connect and log in.
  static std::unique_ptr<AmqpAdmin> Connect(const std::string& url, std::string* error);
  ~AmqpAdmin();

  AmqpAdmin(const AmqpAdmin&) = delete;
  AmqpAdmin& operator=(const AmqpAdmin&) = delete;

  // Publishes to the default exchange and waits for the broker's confirm.
  // Empty strings in `message` are left out of the properties.
  bool Publish(const std::string& routing_key, const RawMessage& message);
  // A plain durable queue without arguments.
  bool DeclareQueue(const std::string& queue);
  // A durable quorum queue with x-max-length 0 and x-overflow
  // reject-publish: once it holds a message (a quorum queue refuses when it
  // is past its limit) every publish to it is nacked.
  bool DeclareRefusingQuorumQueue(const std::string& queue);
  bool DeleteQueue(const std::string& queue);
  // Messages ready in `queue` and its consumers; -1 each if it does not exist.
  struct QueueStats {
    int64_t messages = -1;
    int64_t consumers = -1;
  };
  QueueStats Stats(const std::string& queue);
  // Consumes (and acks) up to `count` messages from `queue`, waiting at most
  // `timeout` for them; returns what came.
  std::vector<RawMessage> Take(const std::string& queue, size_t count, absl::Duration timeout);

 private:
  AmqpAdmin() = default;
  bool Ok(const char* what);

  void* conn_ = nullptr;
};

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_RABBITMQ_AMQP_ADMIN_H_
