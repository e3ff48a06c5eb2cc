#include "filemesh/rpc/async_file_service.hpp"

#include "absl/strings/str_cat.h"

namespace filemesh {
namespace {

// What a backend that never queues says of any operation id.
template <typename Response>
Operation<Response> NoSuchOperation(const std::string& operation_id) {
  Operation<Response> op;
  op.response = absl::NotFoundError(absl::StrCat("no operation \"", operation_id, "\""));
  return op;
}

}  // namespace

Operation<v1::ListResponse> AsyncFileListerInterface::TakeList(
    const std::string& operation_id) const {
  return NoSuchOperation<v1::ListResponse>(operation_id);
}

Operation<v1::SearchResponse> AsyncFileSearcherInterface::TakeSearch(
    const std::string& operation_id) const {
  return NoSuchOperation<v1::SearchResponse>(operation_id);
}

}  // namespace filemesh
