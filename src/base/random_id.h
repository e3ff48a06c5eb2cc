// The one generator of identifiers that must not be guessed: operation ids,
// request ids, the AMQP client's reply-queue and call ids.

#ifndef FILEMESH_SRC_BASE_RANDOM_ID_H_
#define FILEMESH_SRC_BASE_RANDOM_ID_H_

#include <string>

namespace filemesh::internal {

// 128 bits from the kernel's CSPRNG (getrandom), as 32 lowercase hex digits.
std::string RandomHexId();

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_BASE_RANDOM_ID_H_
