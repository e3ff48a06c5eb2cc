// absl::Status <-> grpc::Status, and bytes <-> grpc::ByteBuffer. The codes
// share their numbering (both follow google.rpc.Code).

#ifndef FILEMESH_SRC_RPC_STATUS_CONVERT_H_
#define FILEMESH_SRC_RPC_STATUS_CONVERT_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace filemesh::internal {

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// The bytes of `buffer` in one string.
std::string ByteBufferToString(const grpc::ByteBuffer& buffer);

// A buffer holding a copy of `bytes`.
grpc::ByteBuffer StringToByteBuffer(const std::string& bytes);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_STATUS_CONVERT_H_
