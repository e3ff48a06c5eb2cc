// The two services as asynchronous interfaces: what a caller that must not
// block (the REST gateway, an event loop) needs of a remote lister and
// searcher. FileListerClient and FileSearcherClient (clients.hpp) implement
// them over a FailoverChannel; a test or another transport can implement them
// without one.
//
// Thread safety: implementations must allow calls from any number of threads.

#ifndef FILEMESH_RPC_ASYNC_FILE_SERVICE_HPP_
#define FILEMESH_RPC_ASYNC_FILE_SERVICE_HPP_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/v1/filemesh.pb.h"

namespace filemesh {

// A queued call's typed reply.
template <typename Response>
struct Operation {
  LateReply::State state = LateReply::State::kUnknown;
  absl::StatusOr<Response> response = absl::UnknownError("no reply");
};

// The outcome of an asynchronous typed call and how it was served.
template <typename Response>
using ClientCallback = std::function<void(absl::StatusOr<Response>, CallInfo)>;

class AsyncFileListerInterface {
 public:
  virtual ~AsyncFileListerInterface() = default;

  // Starts a List and returns; `done` runs exactly once with its outcome, by
  // `deadline` at the latest, on any thread (or on the caller's before
  // ListAsync returns, when the outcome is known at once). It must not block.
  virtual void ListAsync(const v1::ListRequest& request, absl::Time deadline,
                         ClientCallback<v1::ListResponse> done) const = 0;

  // The reply of a call that ended queued (CallInfo::operation_id). By
  // default nothing is ever queued: kUnknown.
  virtual Operation<v1::ListResponse> TakeList(const std::string& operation_id) const;

  // The FailoverChannel the calls travel on, for readiness and metrics; null
  // (the default) when there is none, and the backend then counts as ready.
  virtual const FailoverChannel* failover_channel() const { return nullptr; }
};

class AsyncFileSearcherInterface {
 public:
  virtual ~AsyncFileSearcherInterface() = default;

  // As AsyncFileListerInterface::ListAsync.
  virtual void SearchAsync(const v1::SearchRequest& request, absl::Time deadline,
                           ClientCallback<v1::SearchResponse> done) const = 0;

  // As AsyncFileListerInterface::TakeList.
  virtual Operation<v1::SearchResponse> TakeSearch(const std::string& operation_id) const;

  // As AsyncFileListerInterface::failover_channel.
  virtual const FailoverChannel* failover_channel() const { return nullptr; }
};

}  // namespace filemesh

#endif  // FILEMESH_RPC_ASYNC_FILE_SERVICE_HPP_
