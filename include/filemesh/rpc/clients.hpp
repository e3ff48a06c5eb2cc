// Typed clients of the filemesh services over a FailoverChannel. They offer
// the same List/Search as FileLister and FileSearcher (file_service.hpp), so
// code can move between local and remote without change; the extra overloads
// say which transport served a call and hand out queued operations. They are
// also the asynchronous interfaces of async_file_service.hpp.
//
//   auto channel = filemesh::FailoverChannel::Create(options).value();
//   filemesh::FileListerClient lister(channel);
//   filemesh::CallInfo info;
//   auto page = lister.List(request, absl::Now() + absl::Seconds(2), &info);
//   // info.served_by: TransportKind::kGrpc or kAmqp; info.queued: see below
//
// ListAsync/SearchAsync are the non-blocking forms (FailoverChannel::CallAsync
// underneath): the callback gets the typed outcome and the CallInfo once, on
// a transport's thread; the blocking forms wait for them.
//
// Thread safety: any number of threads may share one client.

#ifndef FILEMESH_RPC_CLIENTS_HPP_
#define FILEMESH_RPC_CLIENTS_HPP_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/file_service.hpp"
#include "filemesh/rpc/async_file_service.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/rpc/methods.hpp"

namespace filemesh {

class FileListerClient : public FileListerInterface, public AsyncFileListerInterface {
 public:
  // Calls without a deadline get now + `default_timeout`.
  explicit FileListerClient(std::shared_ptr<FailoverChannel> channel,
                            absl::Duration default_timeout = absl::Seconds(5));

  // An infinite `deadline` means now + the default timeout.
  absl::StatusOr<v1::ListResponse> List(
      const v1::ListRequest& request, absl::Time deadline = absl::InfiniteFuture()) const override;
  // `info` (may be null) says how the call was served. When info->queued is
  // set the status is DeadlineExceeded and the reply can be fetched later with
  // TakeList(info->operation_id).
  absl::StatusOr<v1::ListResponse> List(const v1::ListRequest& request, absl::Time deadline,
                                        CallInfo* info) const;
  // Starts the call and returns; `done` runs once with its outcome (see
  // FailoverChannel::CallAsync for where and when). An infinite `deadline`
  // means now + the default timeout.
  void ListAsync(const v1::ListRequest& request, absl::Time deadline,
                 ClientCallback<v1::ListResponse> done) const override;
  Operation<v1::ListResponse> TakeList(const std::string& operation_id) const override;

  const std::shared_ptr<FailoverChannel>& channel() const { return channel_; }
  const FailoverChannel* failover_channel() const override { return channel_.get(); }

 private:
  std::shared_ptr<FailoverChannel> channel_;
  absl::Duration default_timeout_;
};

class FileSearcherClient : public FileSearcherInterface, public AsyncFileSearcherInterface {
 public:
  explicit FileSearcherClient(std::shared_ptr<FailoverChannel> channel,
                              absl::Duration default_timeout = absl::Seconds(5));

  // An infinite `deadline` means now + the default timeout.
  absl::StatusOr<v1::SearchResponse> Search(
      const v1::SearchRequest& request,
      absl::Time deadline = absl::InfiniteFuture()) const override;
  absl::StatusOr<v1::SearchResponse> Search(const v1::SearchRequest& request, absl::Time deadline,
                                            CallInfo* info) const;
  void SearchAsync(const v1::SearchRequest& request, absl::Time deadline,
                   ClientCallback<v1::SearchResponse> done) const override;
  Operation<v1::SearchResponse> TakeSearch(const std::string& operation_id) const override;

  const std::shared_ptr<FailoverChannel>& channel() const { return channel_; }
  const FailoverChannel* failover_channel() const override { return channel_.get(); }

 private:
  std::shared_ptr<FailoverChannel> channel_;
  absl::Duration default_timeout_;
};

}  // namespace filemesh

#endif  // FILEMESH_RPC_CLIENTS_HPP_
