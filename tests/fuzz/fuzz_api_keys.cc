// The gateway's API keys file (an operator's, read again whenever it
// changes): parsed or refused with a status, never a crash; a key added in
// clear beside the file's is found by itself, named and unscoped.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rest/api_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto keys = filemesh::internal::ApiKeys::Parse(text, "fuzz-keys");
  if (!keys.ok()) return 0;
  // A key in clear beside them: found by itself, and by nothing else here.
  if (keys->AddKey("fuzz-plain", "fuzz-plain-key").ok()) {
    const filemesh::internal::ApiKey* found = keys->Find("fuzz-plain-key");
    if (found == nullptr || found->name != "fuzz-plain" || !found->scope.empty()) std::abort();
  }
  return 0;
}
