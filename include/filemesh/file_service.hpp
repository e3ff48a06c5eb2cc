// The two services as interfaces: FileLister and FileSearcher answer them
// locally, FileListerClient and FileSearcherClient (clients.hpp) remotely, so
// code written against an interface runs either way without change.

#ifndef FILEMESH_FILE_SERVICE_HPP_
#define FILEMESH_FILE_SERVICE_HPP_

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/v1/filemesh.pb.h"

namespace filemesh {

// Full method names of the two services, as gRPC and AMQP carry them.
inline constexpr char kListMethod[] = "/filemesh.v1.FileLister/List";
inline constexpr char kSearchMethod[] = "/filemesh.v1.FileSearcher/Search";

class FileListerInterface {
 public:
  virtual ~FileListerInterface() = default;
  // Lists one directory; see file_lister.hpp for the contract.
  virtual absl::StatusOr<v1::ListResponse> List(const v1::ListRequest& request) const = 0;
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
