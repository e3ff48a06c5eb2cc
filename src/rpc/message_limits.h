// The one maximum message size (max_message_bytes) every transport and the
// service host take: its valid range, and the status of a message above it.

#ifndef FILEMESH_SRC_RPC_MESSAGE_LIMITS_H_
#define FILEMESH_SRC_RPC_MESSAGE_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/absl_compat.h"

namespace filemesh::internal {

// InvalidArgument unless 1 <= max_message_bytes <= 2^31 - 1 (gRPC keeps
// message sizes in an int).
inline absl::Status CheckMaxMessageBytes(size_t max_message_bytes) {
  if (max_message_bytes == 0 || max_message_bytes > size_t{INT32_MAX}) {
    return absl::InvalidArgumentError("max_message_bytes must be between 1 and 2^31 - 1");
  }
  return absl::OkStatus();
}

// RESOURCE_EXHAUSTED: "the <what> is N bytes, above the limit of M
// (max_message_bytes)": a clear error, never a failover.
inline absl::Status MessageTooLarge(std::string_view what, size_t bytes, size_t limit,
                                    std::string_view limit_name = "max_message_bytes") {
  return absl::ResourceExhaustedError(absl::StrCat("the ", AbslView(what), " is ", bytes,
                                                   " bytes, above the limit of ", limit, " (",
                                                   AbslView(limit_name), ")"));
}

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_MESSAGE_LIMITS_H_
