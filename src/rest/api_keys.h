// The gateway's API keys: named, stored as SHA-256 digests, each optionally
// limited to a scope (a directory relative to the services' root), read from
// a file that is read again when it changes (docs/security.md):
//
//   # NAME      SHA-256 OF THE KEY (hex)                                          [SCOPE]
//   ci-bot      3f0a...64 hex digits...                                           projects/a
//   operator    9b1c...
//
// A digest is `printf %s "$KEY" | sha256sum`. Blank lines and lines starting
// with '#' are skipped. Names are 1 to 64 of [A-Za-z0-9._@-] and unique, as
// are digests; a scope is a clean relative path without whitespace.

#ifndef FILEMESH_SRC_REST_API_KEYS_H_
#define FILEMESH_SRC_REST_API_KEYS_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/file_stamp.h"
#include "filemesh/internal/mutex.hpp"

namespace filemesh::internal {

struct ApiKey {
  std::string name;
  // The directory the key may read beneath, relative to the root; "" is the
  // whole tree.
  std::string scope;
};

class ApiKeys {
 public:
  // InvalidArgument naming `source` and the line for a malformed line, a
  // name or digest given twice, or a scope that is not a clean relative path.
  static absl::StatusOr<ApiKeys> Parse(std::string_view text, std::string_view source);

  // Adds a key given in clear (--api_key) under `name`, for the whole tree.
  // InvalidArgument when the key or the name is already there.
  absl::Status AddKey(std::string_view name, std::string_view key);

  // The key whose digest is SHA-256(`presented`), or null. The time taken
  // does not depend on how much of a stored key `presented` matches.
  const ApiKey* Find(std::string_view presented) const;

  size_t size() const { return by_digest_.size(); }

 private:
  // Raw 32-byte digest -> key.
  absl::flat_hash_map<std::string, ApiKey> by_digest_;
};

// The SHA-256 of `bytes`, 32 raw bytes.
std::string Sha256(std::string_view bytes);

// The keys of a file (and of a key given in clear), read again when the
// file's inode, size or modification time change, checked at most once a
// second. A file that no longer parses keeps the keys read before (logged as
// event=api_keys_reload_failed, and tried again a second later).
class ApiKeySource {
 public:
  // `file` may be empty (only `plain_key`); `plain_key` may be empty (only
  // the file). Errors: those of ApiKeys::Parse, and an unreadable file.
  static absl::StatusOr<std::unique_ptr<ApiKeySource>> Create(std::string file,
                                                              std::string plain_key);

  std::shared_ptr<const ApiKeys> Current();

 private:
  ApiKeySource(std::string file, std::string plain_key)
      : file_(std::move(file)), plain_key_(std::move(plain_key)) {}
  absl::StatusOr<std::shared_ptr<const ApiKeys>> Load(FileStamp* stamp) const;

  const std::string file_;
  const std::string plain_key_;
  Mutex mu_;
  std::shared_ptr<const ApiKeys> current_ ABSL_GUARDED_BY(mu_);
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point next_check_ ABSL_GUARDED_BY(mu_);
};

// Whether `path` (a request's path, relative to the root) is `scope` or lies
// beneath it, compared after cleaning both ("a/./b" is "a/b"); a path that
// does not clean (it climbs above the root, ...) is not.
bool WithinScope(std::string_view path, std::string_view scope);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_API_KEYS_H_
