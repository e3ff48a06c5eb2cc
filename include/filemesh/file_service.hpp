// The two services as interfaces: FileLister and FileSearcher answer them
// locally, FileListerClient and FileSearcherClient (clients.hpp) remotely, so
// code written against an interface runs either way without change.

#ifndef FILEMESH_FILE_SERVICE_HPP_
#define FILEMESH_FILE_SERVICE_HPP_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/transport.hpp"
#include "filemesh/v1/filemesh.pb.h"

namespace filemesh {

// Full method names of the two services, as gRPC and AMQP carry them.
inline constexpr char kListMethod[] = "/filemesh.v1.FileLister/List";
inline constexpr char kSearchMethod[] = "/filemesh.v1.FileSearcher/Search";

// The byte budget of one List page or Search answer's entries for a
// transport maximum of `max_message_bytes`: that less a sixteenth, at most
// 1 MiB, of room for the rest of the message, so the largest answer still
// travels. A page or search that reaches it ends early (a shorter page with
// a next_page_token; a search truncated with TRUNCATION_REASON_MAX_BYTES).
constexpr size_t ResponseBudget(size_t max_message_bytes) {
  const size_t room =
      max_message_bytes / 16 < (size_t{1} << 20) ? max_message_bytes / 16 : (size_t{1} << 20);
  return max_message_bytes - room;
}

// ResponseBudget(kDefaultMaxMessageBytes): 15 MiB.
inline constexpr size_t kDefaultMaxResponseBytes = ResponseBudget(kDefaultMaxMessageBytes);

class FileListerInterface {
 public:
  virtual ~FileListerInterface() = default;
  // Lists one directory; see file_lister.hpp for the contract. The deadline
  // bounds the work: past it the answer is DeadlineExceeded.
  virtual absl::StatusOr<v1::ListResponse> List(
      const v1::ListRequest& request, absl::Time deadline = absl::InfiniteFuture()) const = 0;
};

class FileSearcherInterface {
 public:
  virtual ~FileSearcherInterface() = default;
  // Searches a tree; see file_searcher.hpp for the contract.
  virtual absl::StatusOr<v1::SearchResponse> Search(
      const v1::SearchRequest& request, absl::Time deadline = absl::InfiniteFuture()) const = 0;
};

}  // namespace filemesh

#endif  // FILEMESH_FILE_SERVICE_HPP_
