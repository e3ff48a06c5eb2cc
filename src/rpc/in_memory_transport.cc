#include "filemesh/testing/in_memory_transport.hpp"

#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/handler_registry.h"

namespace filemesh::testing {

struct InMemoryTransport::Impl {
  mutable std::mutex mu;
  internal::HandlerRegistry registry;
  bool unavailable = false;
  bool queueing = false;
  uint64_t calls = 0;
  uint64_t next_id = 1;
  struct Queued {
    std::string method;
    std::string request;
    bool done = false;
    absl::StatusOr<std::string> response = absl::UnknownError("no reply");
  };
  std::map<std::string, Queued> queued;

  TransportResult Answer(const std::string& method, const std::string& request,
                         absl::Time deadline);

  absl::StatusOr<std::string> Serve(const std::string& method, const std::string& request,
                                    absl::Time deadline) {
    internal::RawHandler handler;
    {
      std::lock_guard<std::mutex> lock(mu);
      const internal::RawHandler* found = registry.Find(method);
      if (found == nullptr) return absl::UnimplementedError("unknown method " + method);
      handler = *found;
    }
    return handler(request, deadline);
  }
};

InMemoryTransport::InMemoryTransport() : impl_(std::make_unique<Impl>()) {}
InMemoryTransport::~InMemoryTransport() = default;

void InMemoryTransport::Register(const std::string& method, RawMethodHandler handler) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->registry.Add(method, std::move(handler));
}

void InMemoryTransport::ServeFileLister(const FileListerInterface& service) {
  Register(kListMethod, [&service](const std::string& bytes, absl::Time) {
    v1::ListRequest request;
    if (!request.ParseFromString(bytes)) {
      return absl::StatusOr<std::string>(absl::InvalidArgumentError("not a ListRequest"));
    }
    absl::StatusOr<v1::ListResponse> r = service.List(request);
    if (!r.ok()) return absl::StatusOr<std::string>(r.status());
    return absl::StatusOr<std::string>(r->SerializeAsString());
  });
}

void InMemoryTransport::ServeFileSearcher(const FileSearcherInterface& service) {
  Register(kSearchMethod, [&service](const std::string& bytes, absl::Time deadline) {
    v1::SearchRequest request;
    if (!request.ParseFromString(bytes)) {
      return absl::StatusOr<std::string>(absl::InvalidArgumentError("not a SearchRequest"));
    }
    absl::StatusOr<v1::SearchResponse> r = service.Search(request, deadline);
    if (!r.ok()) return absl::StatusOr<std::string>(r.status());
    return absl::StatusOr<std::string>(r->SerializeAsString());
  });
}

void InMemoryTransport::SetUnavailable(bool unavailable) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->unavailable = unavailable;
}

void InMemoryTransport::SetQueueing(bool queueing) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->queueing = queueing;
}

void InMemoryTransport::DeliverQueued() {
  std::map<std::string, Impl::Queued> pending;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& [id, q] : impl_->queued) {
      if (!q.done) pending.emplace(id, q);
    }
  }
  for (auto& [id, q] : pending) {
    absl::StatusOr<std::string> response =
        impl_->Serve(q.method, q.request, absl::InfiniteFuture());
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->queued.find(id);
    if (it == impl_->queued.end()) continue;
    it->second.done = true;
    it->second.response = std::move(response);
  }
}

uint64_t InMemoryTransport::calls() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->calls;
}

void InMemoryTransport::CallAsync(const std::string& method, const std::string& request,
                                  const CallOptions& options, TransportCallback done) {
  done(impl_->Answer(method, request, options.deadline));
}

TransportResult InMemoryTransport::Impl::Answer(const std::string& method,
                                                const std::string& request, absl::Time deadline) {
  TransportResult result;
  {
    std::lock_guard<std::mutex> lock(mu);
    ++calls;
    if (unavailable) {
      result.response = absl::UnavailableError("in-memory transport set unavailable");
      return result;
    }
    if (queueing) {
      const std::string id = absl::StrCat("in-memory-", next_id++);
      queued[id] = Impl::Queued{method, request};
      result.response = absl::DeadlineExceededError("queued; no reply yet");
      result.queued_id = id;
      return result;
    }
  }
  result.accepted = true;
  result.response = Serve(method, request, deadline);
  return result;
}

bool InMemoryTransport::KnownUnavailable() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->unavailable;
}

LateReply InMemoryTransport::TakeLateReply(const std::string& queued_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->queued.find(queued_id);
  LateReply reply;
  if (it == impl_->queued.end()) return reply;
  if (!it->second.done) {
    reply.state = LateReply::State::kPending;
    return reply;
  }
  reply.state = LateReply::State::kDone;
  reply.response = std::move(it->second.response);
  impl_->queued.erase(it);
  return reply;
}

}  // namespace filemesh::testing
