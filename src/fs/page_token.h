// Opaque, keyset-based page tokens for FileLister.
//
// A token names the last entry returned (its sort key and exact name), plus
// what the request it belongs to asked for. It is base64url text with a
// SipHash-2-4 MAC, so a token that was altered, truncated or made for another
// request is refused instead of silently listing the wrong thing.

#ifndef FILEMESH_SRC_FS_PAGE_TOKEN_H_
#define FILEMESH_SRC_FS_PAGE_TOKEN_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace filemesh::internal {

// SipHash-2-4 of `data` under a 128-bit key.
uint64_t SipHash24(uint64_t k0, uint64_t k1, std::string_view data);

struct PageKey {
  uint8_t sort = 0;  // v1::SortField value
  bool descending = false;
  bool include_hidden = false;
  uint64_t path_digest = 0;  // SipHash of the cleaned path
  uint64_t number = 0;       // size, or mtime in ns as int64 bits; 0 for name sort
  std::string name;          // exact bytes of the last name returned
};

class PageTokenCodec {
 public:
  // Keys derive from `secret` (empty: a fixed built-in key).
  explicit PageTokenCodec(std::string_view secret);

  uint64_t PathDigest(std::string_view clean_path) const;
  std::string Encode(const PageKey& key) const;
  // InvalidArgument for anything that is not a token this codec made.
  absl::StatusOr<PageKey> Decode(std::string_view token) const;

 private:
  uint64_t k0_;
  uint64_t k1_;
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_PAGE_TOKEN_H_
