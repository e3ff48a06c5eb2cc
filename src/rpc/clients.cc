#include "filemesh/rpc/clients.hpp"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace filemesh {
namespace {

template <typename Response>
absl::StatusOr<Response> Parse(absl::StatusOr<std::string> bytes, const char* method) {
  if (!bytes.ok()) return bytes.status();
  Response response;
  if (!response.ParseFromString(*bytes)) {
    return absl::InternalError(absl::StrCat("the reply of ", method, " is not a valid ",
                                            Response::descriptor()->full_name()));
  }
  return response;
}

template <typename Request, typename Response>
void InvokeAsync(FailoverChannel& channel, const char* method, const Request& request,
                 absl::Time deadline, ClientCallback<Response> done) {
  channel.CallAsync(method, request.SerializeAsString(), deadline,
                    [method, done = std::move(done)](CallResult result) {
                      done(Parse<Response>(std::move(result.response), method),
                           std::move(result.info));
                    });
}

// The blocking form of InvokeAsync.
template <typename Request, typename Response>
absl::StatusOr<Response> Invoke(FailoverChannel& channel, const char* method,
                                const Request& request, absl::Time deadline, CallInfo* info) {
  CallResult result = channel.Call(method, request.SerializeAsString(), deadline);
  if (info != nullptr) *info = result.info;
  return Parse<Response>(std::move(result.response), method);
}

template <typename Response>
Operation<Response> Take(FailoverChannel& channel, const std::string& id, const char* method) {
  LateReply reply = channel.TakeLateReply(id);
  Operation<Response> op;
  op.state = reply.state;
  if (reply.state == LateReply::State::kDone) {
    op.response = Parse<Response>(std::move(reply.response), method);
  } else if (reply.state == LateReply::State::kPending) {
    op.response = absl::UnavailableError("the operation has no reply yet");
  } else {
    op.response = absl::NotFoundError(absl::StrCat("no operation \"", id, "\""));
  }
  return op;
}

absl::Time DeadlineOr(absl::Time deadline, absl::Duration timeout) {
  return deadline == absl::InfiniteFuture() ? absl::Now() + timeout : deadline;
}

}  // namespace

FileListerClient::FileListerClient(std::shared_ptr<FailoverChannel> channel,
                                   absl::Duration default_timeout)
    : channel_(std::move(channel)), default_timeout_(default_timeout) {}

absl::StatusOr<v1::ListResponse> FileListerClient::List(const v1::ListRequest& request,
                                                        absl::Time deadline) const {
  return List(request, deadline, nullptr);
}

absl::StatusOr<v1::ListResponse> FileListerClient::List(const v1::ListRequest& request,
                                                        absl::Time deadline, CallInfo* info) const {
  return Invoke<v1::ListRequest, v1::ListResponse>(*channel_, kListMethod, request,
                                                   DeadlineOr(deadline, default_timeout_), info);
}

void FileListerClient::ListAsync(const v1::ListRequest& request, absl::Time deadline,
                                 ClientCallback<v1::ListResponse> done) const {
  InvokeAsync<v1::ListRequest, v1::ListResponse>(
      *channel_, kListMethod, request, DeadlineOr(deadline, default_timeout_), std::move(done));
}

Operation<v1::ListResponse> FileListerClient::TakeList(const std::string& operation_id) const {
  return Take<v1::ListResponse>(*channel_, operation_id, kListMethod);
}

FileSearcherClient::FileSearcherClient(std::shared_ptr<FailoverChannel> channel,
                                       absl::Duration default_timeout)
    : channel_(std::move(channel)), default_timeout_(default_timeout) {}

absl::StatusOr<v1::SearchResponse> FileSearcherClient::Search(const v1::SearchRequest& request,
                                                              absl::Time deadline) const {
  return Search(request, deadline, nullptr);
}

absl::StatusOr<v1::SearchResponse> FileSearcherClient::Search(const v1::SearchRequest& request,
                                                              absl::Time deadline,
                                                              CallInfo* info) const {
  return Invoke<v1::SearchRequest, v1::SearchResponse>(
      *channel_, kSearchMethod, request, DeadlineOr(deadline, default_timeout_), info);
}

void FileSearcherClient::SearchAsync(const v1::SearchRequest& request, absl::Time deadline,
                                     ClientCallback<v1::SearchResponse> done) const {
  InvokeAsync<v1::SearchRequest, v1::SearchResponse>(
      *channel_, kSearchMethod, request, DeadlineOr(deadline, default_timeout_), std::move(done));
}

Operation<v1::SearchResponse> FileSearcherClient::TakeSearch(
    const std::string& operation_id) const {
  return Take<v1::SearchResponse>(*channel_, operation_id, kSearchMethod);
}

}  // namespace filemesh
