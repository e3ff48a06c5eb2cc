// The two services as interfaces: FileLister and FileSearcher answer them
// locally, FileListerClient and FileSearcherClient (filemesh/rpc/clients.hpp)
// remotely, so code written against an interface runs either way without
// change. Nothing here knows of a transport.

#ifndef FILEMESH_FILE_SERVICE_HPP_
#define FILEMESH_FILE_SERVICE_HPP_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/v1/filemesh.pb.h"

namespace filemesh {

// The default byte budget of one List page's or Search answer's entries
// (FileListerOptions and FileSearcherOptions::max_response_bytes): 15 MiB,
// which leaves room for the rest of the message within the 16 MiB a filemesh
// transport carries by default (filemesh/rpc/methods.hpp: ResponseBudget). A
// page or search that reaches it ends early (a shorter page with a
// next_page_token; a search truncated with TRUNCATION_REASON_MAX_BYTES).
inline constexpr size_t kDefaultMaxResponseBytes = size_t{15} << 20;

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
