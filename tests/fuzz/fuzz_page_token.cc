// Page tokens as a client may send them: Decode never crashes, and a key it
// accepts survives its own encoding unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fs/page_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const filemesh::internal::PageTokenCodec codec("fuzz-secret");
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  auto key = codec.Decode(token);
  if (!key.ok()) return 0;
  auto again = codec.Decode(codec.Encode(*key));
  if (!again.ok() || again->sort != key->sort || again->descending != key->descending ||
      again->include_hidden != key->include_hidden || again->path_digest != key->path_digest ||
      again->number != key->number || again->name != key->name) {
    std::abort();
  }
  return 0;
}
