// InMemoryTransport: a Transport that calls handlers in the same process, for
// unit tests of code that uses FailoverChannel or the typed clients, with no
// network and no broker.
//
//   auto transport = std::make_unique<filemesh::testing::InMemoryTransport>();
//   transport->ServeFileLister(my_fake_lister);
//   auto channel = std::make_shared<filemesh::FailoverChannel>(
//       std::move(transport), nullptr, filemesh::FailoverPolicy{});
//   filemesh::FileListerClient client(channel);
//
// It can also play a failing or queueing transport, to exercise the caller's
// handling of Unavailable and of queued operations.
//
// Thread safety: all methods may be called concurrently.

#ifndef FILEMESH_TESTING_IN_MEMORY_TRANSPORT_HPP_
#define FILEMESH_TESTING_IN_MEMORY_TRANSPORT_HPP_

#include <cstdint>
#include <memory>
#include <string>

#include "filemesh/file_service.hpp"
#include "filemesh/service_host.hpp"
#include "filemesh/transport.hpp"

namespace filemesh::testing {

class InMemoryTransport final : public Transport {
 public:
  InMemoryTransport();
  ~InMemoryTransport() override;

  // Serves `method` with `handler` (bytes in, bytes out).
  void Register(const std::string& method, RawMethodHandler handler);
  // Serves List / Search with `service`, which must outlive the transport.
  void ServeFileLister(const FileListerInterface& service);
  void ServeFileSearcher(const FileSearcherInterface& service);

  // While set, every call fails with Unavailable and KnownUnavailable() is
  // true, as a transport whose peer is down.
  void SetUnavailable(bool unavailable);
  // While set, calls are not answered: each returns DeadlineExceeded with a
  // queued_id, as a broker that accepted the request but has no consumer.
  void SetQueueing(bool queueing);
  // Answers every queued call now (their replies become TakeLateReply's).
  void DeliverQueued();

  // Calls received so far.
  uint64_t calls() const;

  TransportKind kind() const override { return TransportKind::kInMemory; }
  // Serves the call on the calling thread: `done` runs before it returns.
  void CallAsync(const std::string& method, const std::string& request, const CallOptions& options,
                 TransportCallback done) override;
  bool KnownUnavailable() const override;
  LateReply TakeLateReply(const std::string& queued_id) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTING_IN_MEMORY_TRANSPORT_HPP_
