// The filemesh methods as RPC carries them, and the one way a typed handler
// becomes a handler of serialized messages (what ServiceHost and
// testing::InMemoryTransport serve).
//
//   filemesh::RawMethodHandler raw = filemesh::MakeRawHandler<v1::ListRequest, v1::ListResponse>(
//       filemesh::kListMethod,
//       [&](const v1::ListRequest& request, absl::Time deadline) {
//         return lister.List(request, deadline);
//       });

#ifndef FILEMESH_RPC_METHODS_HPP_
#define FILEMESH_RPC_METHODS_HPP_

#include <cstddef>
#include <exception>
#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "filemesh/file_service.hpp"
#include "filemesh/rpc/transport.hpp"

namespace filemesh {

// Full method names of the two services, as gRPC and AMQP carry them.
inline constexpr char kListMethod[] = "/filemesh.v1.FileLister/List";
inline constexpr char kSearchMethod[] = "/filemesh.v1.FileSearcher/Search";

// The byte budget of one List page or Search answer's entries for a
// transport maximum of `max_message_bytes`: that less a sixteenth, at most
// 1 MiB, of room for the rest of the message, so the largest answer still
// travels.
constexpr size_t ResponseBudget(size_t max_message_bytes) {
  const size_t room =
      max_message_bytes / 16 < (size_t{1} << 20) ? max_message_bytes / 16 : (size_t{1} << 20);
  return max_message_bytes - room;
}
static_assert(ResponseBudget(kDefaultMaxMessageBytes) == kDefaultMaxResponseBytes,
              "the file services' default budget fits the transports' default message size");

// The payload (absl::Status::SetPayload) that marks an INVALID_ARGUMENT as
// "the request itself does not parse": over AMQP such a request is answered
// and then dead-lettered, never offered to another replica. MakeRawHandler
// sets it; a raw handler may too.
inline constexpr char kUnparseableRequestPayload[] = "filemesh.dev/unparseable-request";

// A handler on serialized messages: the form every typed handler takes
// inside a server. `deadline` is when the answer must be ready.
using RawMethodHandler =
    std::function<absl::StatusOr<std::string>(const std::string& request, absl::Time deadline)>;

// A typed handler of one method.
template <typename Request, typename Response>
using MethodHandler = std::function<absl::StatusOr<Response>(const Request&, absl::Time)>;

// `handler` on serialized messages: a request that does not parse as
// Request is answered INVALID_ARGUMENT (marked kUnparseableRequestPayload)
// without calling it; the deadline is passed on unchanged; an exception the
// handler throws is answered INTERNAL.
template <typename Request, typename Response>
RawMethodHandler MakeRawHandler(std::string method, MethodHandler<Request, Response> handler) {
  return [method = std::move(method), handler = std::move(handler)](
             const std::string& bytes, absl::Time deadline) -> absl::StatusOr<std::string> {
    Request request;
    if (!request.ParseFromString(bytes)) {
      absl::Status unparseable = absl::InvalidArgumentError(absl::StrCat(
          "the request to ", method, " is not a valid ", Request::descriptor()->full_name()));
      unparseable.SetPayload(kUnparseableRequestPayload, absl::Cord());
      return unparseable;
    }
    try {
      absl::StatusOr<Response> response = handler(request, deadline);
      if (!response.ok()) return response.status();
      return response->SerializeAsString();
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("handler of ", method, " threw: ", e.what()));
    } catch (...) {
      return absl::InternalError(absl::StrCat("handler of ", method, " threw"));
    }
  };
}

// kListMethod served by `service`, which must outlive the handler.
inline RawMethodHandler FileListerHandler(const FileListerInterface& service) {
  return MakeRawHandler<v1::ListRequest, v1::ListResponse>(
      kListMethod, [&service](const v1::ListRequest& request, absl::Time deadline) {
        return service.List(request, deadline);
      });
}

// kSearchMethod served by `service`, which must outlive the handler.
inline RawMethodHandler FileSearcherHandler(const FileSearcherInterface& service) {
  return MakeRawHandler<v1::SearchRequest, v1::SearchResponse>(
      kSearchMethod, [&service](const v1::SearchRequest& request, absl::Time deadline) {
        return service.Search(request, deadline);
      });
}

}  // namespace filemesh

#endif  // FILEMESH_RPC_METHODS_HPP_
