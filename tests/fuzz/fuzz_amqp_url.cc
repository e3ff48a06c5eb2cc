// AMQP URLs as an operator (or an environment variable) gives them: parsed
// or refused with a status; a parsed URL's redacted form holds no password.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rpc/amqp_url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto url = filemesh::internal::ParseAmqpUrl(text);
  if (!url.ok()) return 0;
  const std::string redacted = url->Redacted();
  // The password's place holds *** whatever the password is.
  if (!url->password.empty() && redacted.find(":" + url->password + "@") != std::string::npos &&
      url->password != "***") {
    std::abort();
  }
  return 0;
}
