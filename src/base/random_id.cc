#include "base/random_id.h"

#include <sys/random.h>

#include <cerrno>
#include <random>

#include "absl/strings/escaping.h"

namespace filemesh::internal {

std::string RandomHexId() {
  char bytes[16];
  size_t filled = 0;
  while (filled < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + filled, sizeof(bytes) - filled, 0);
    if (n > 0) {
      filled += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      break;
    }
  }
  if (filled < sizeof(bytes)) {
    // No getrandom (a kernel before 3.17): the C++ library's own source.
    std::random_device device;
    for (char& b : bytes) b = static_cast<char>(device());
  }
  return absl::BytesToHexString(absl::string_view(bytes, sizeof(bytes)));
}

}  // namespace filemesh::internal
