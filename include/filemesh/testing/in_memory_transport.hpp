// InMemoryTransport: a Transport that calls handlers in the same process, for
// unit tests of code that uses FailoverChannel or the typed clients, with no
// network and no broker. Header-only (CMake target filemesh::testing): no
// production library contains it.
//
//   auto transport = std::make_unique<filemesh::testing::InMemoryTransport>();
//   transport->ServeFileLister(my_fake_lister);
//   auto channel = std::make_shared<filemesh::FailoverChannel>(
//       std::move(transport), nullptr, filemesh::FailoverPolicy{});
//   filemesh::FileListerClient client(channel);
//
// It can also play a failing or queueing transport, to exercise the caller's
// handling of Unavailable and of queued operations. Handlers get the call's
// deadline, as a server's would.
//
// Thread safety: all methods may be called concurrently.

#ifndef FILEMESH_TESTING_IN_MEMORY_TRANSPORT_HPP_
#define FILEMESH_TESTING_IN_MEMORY_TRANSPORT_HPP_

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "filemesh/file_service.hpp"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/rpc/methods.hpp"
#include "filemesh/rpc/transport.hpp"

namespace filemesh::testing {

class InMemoryTransport final : public Transport {
 public:
  // Serves `method` with `handler` (bytes in, bytes out).
  void Register(const std::string& method, RawMethodHandler handler) {
    internal::MutexLock lock(&mu_);
    handlers_[method] = std::move(handler);
  }
  // Serves List / Search with `service`, which must outlive the transport.
  void ServeFileLister(const FileListerInterface& service) {
    Register(kListMethod, FileListerHandler(service));
  }
  void ServeFileSearcher(const FileSearcherInterface& service) {
    Register(kSearchMethod, FileSearcherHandler(service));
  }

  // While set, every call fails with Unavailable and KnownUnavailable() is
  // true, as a transport whose peer is down.
  void SetUnavailable(bool unavailable) {
    internal::MutexLock lock(&mu_);
    unavailable_ = unavailable;
  }
  // While set, calls are not answered: each returns DeadlineExceeded with a
  // queued_id, as a broker that accepted the request but has no consumer.
  void SetQueueing(bool queueing) {
    internal::MutexLock lock(&mu_);
    queueing_ = queueing;
  }
  // Answers every queued call now (their replies go to the late-reply
  // listener, or become TakeLateReply's).
  void DeliverQueued();

  // Calls received so far.
  uint64_t calls() const {
    internal::MutexLock lock(&mu_);
    return calls_;
  }

  TransportKind kind() const override { return TransportKind::kInMemory; }
  // Serves the call on the calling thread: `done` runs before it returns.
  void CallAsync(const std::string& method, const std::string& request, const CallOptions& options,
                 TransportCallback done) override {
    TransportResult result = Answer(method, request, options.deadline);
    const std::string queued_id = result.queued_id;
    done(std::move(result));
    if (queued_id.empty()) return;
    {
      internal::MutexLock lock(&mu_);
      auto it = queued_.find(queued_id);
      if (it == queued_.end()) return;
      it->second.answered = true;
      if (!it->second.done) return;
    }
    NotifyLate(queued_id);
  }
  bool KnownUnavailable() const override {
    internal::MutexLock lock(&mu_);
    return unavailable_;
  }
  LateReply TakeLateReply(const std::string& queued_id) override;
  void SetLateReplyListener(const LateReplyListener& listener) override {
    internal::MutexLock lock(&listener_mu_);
    listener_ = listener;
  }

 private:
  struct Queued {
    std::string method;
    std::string request;
    bool answered = false;  // the caller's callback has returned
    bool done = false;
    absl::StatusOr<std::string> response = absl::UnknownError("no reply");
  };

  TransportResult Answer(const std::string& method, const std::string& request,
                         absl::Time deadline);
  absl::StatusOr<std::string> Serve(const std::string& method, const std::string& request,
                                    absl::Time deadline) const;
  // Gives queued call `id`'s reply to the listener (forgotten when taken).
  void NotifyLate(const std::string& id);

  internal::Mutex listener_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  LateReplyListener listener_ ABSL_GUARDED_BY(listener_mu_);

  mutable internal::Mutex mu_;
  std::map<std::string, RawMethodHandler> handlers_ ABSL_GUARDED_BY(mu_);
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  bool queueing_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Queued> queued_ ABSL_GUARDED_BY(mu_);
};

inline void InMemoryTransport::DeliverQueued() {
  std::map<std::string, Queued> pending;
  {
    internal::MutexLock lock(&mu_);
    for (const auto& [id, q] : queued_) {
      if (!q.done) pending.emplace(id, q);
    }
  }
  for (auto& [id, q] : pending) {
    absl::StatusOr<std::string> response = Serve(q.method, q.request, absl::InfiniteFuture());
    {
      internal::MutexLock lock(&mu_);
      auto it = queued_.find(id);
      if (it == queued_.end()) continue;
      it->second.done = true;
      it->second.response = std::move(response);
      if (!it->second.answered) continue;  // CallAsync tells, once its caller returned
    }
    NotifyLate(id);
  }
}

inline void InMemoryTransport::NotifyLate(const std::string& id) {
  internal::MutexLock hold(&listener_mu_);
  if (!listener_) return;
  absl::StatusOr<std::string> response = absl::UnknownError("no reply");
  {
    internal::MutexLock lock(&mu_);
    auto it = queued_.find(id);
    if (it == queued_.end() || !it->second.done) return;
    response = it->second.response;
  }
  if (!listener_(id, response)) return;
  internal::MutexLock lock(&mu_);
  queued_.erase(id);
}

inline LateReply InMemoryTransport::TakeLateReply(const std::string& queued_id) {
  internal::MutexLock lock(&mu_);
  auto it = queued_.find(queued_id);
  LateReply reply;
  if (it == queued_.end()) return reply;
  if (!it->second.done) {
    reply.state = LateReply::State::kPending;
    return reply;
  }
  reply.state = LateReply::State::kDone;
  reply.response = std::move(it->second.response);
  queued_.erase(it);
  return reply;
}

inline TransportResult InMemoryTransport::Answer(const std::string& method,
                                                 const std::string& request, absl::Time deadline) {
  TransportResult result;
  {
    internal::MutexLock lock(&mu_);
    ++calls_;
    if (unavailable_) {
      result.response = absl::UnavailableError("in-memory transport set unavailable");
      return result;
    }
    if (queueing_) {
      // Unique in the process, as a broker's random ids are everywhere: a
      // gateway's operation store finds a call by its id alone.
      static std::atomic<uint64_t> next_id{1};
      const std::string id = absl::StrCat("in-memory-", next_id.fetch_add(1));
      queued_[id] = Queued{method, request};
      result.response = absl::DeadlineExceededError("queued; no reply yet");
      result.queued_id = id;
      return result;
    }
  }
  result.accepted = true;
  result.response = Serve(method, request, deadline);
  return result;
}

inline absl::StatusOr<std::string> InMemoryTransport::Serve(const std::string& method,
                                                            const std::string& request,
                                                            absl::Time deadline) const {
  RawMethodHandler handler;
  {
    internal::MutexLock lock(&mu_);
    auto it = handlers_.find(method);
    if (it == handlers_.end()) return absl::UnimplementedError("unknown method " + method);
    handler = it->second;
  }
  return handler(request, deadline);
}

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTING_IN_MEMORY_TRANSPORT_HPP_
