// FileLister lists one directory under a root, one page at a time.
//
// The root is a jail: every request path is resolved beneath it by the kernel
// (openat2 with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) or, where openat2 is
// missing, by an equivalent component-by-component O_NOFOLLOW walk. Nothing
// outside the root is ever opened, and a lookup holds at most two file
// descriptors whatever the depth. See docs/errors.md for the status codes.
//
// Thread safety: a FileLister is immutable after construction; List() may be
// called from any number of threads at once.

#ifndef FILEMESH_FILE_LISTER_HPP_
#define FILEMESH_FILE_LISTER_HPP_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "filemesh/file_service.hpp"
#include "filemesh/v1/filemesh.pb.h"

namespace filemesh {

struct FileListerOptions {
  // Mixed into the MAC that guards page tokens. Replicas that should accept
  // each other's tokens must share it; leave empty for a fixed built-in key
  // (tokens then detect tampering but are not secret).
  std::string page_token_secret;
  // Serialized bytes of one page at most (see List).
  size_t max_response_bytes = kDefaultMaxResponseBytes;
  // Withhold the target text of symlinks whose target leaves the root (see
  // FileEntry.symlink_target_redacted). For a lister that serves others.
  bool redact_outside_targets = false;
  // Refuse a directory whose path crosses a mount point below the root
  // (PermissionDenied): the service lists one filesystem.
  bool one_file_system = false;
};

class FileLister : public FileListerInterface {
 public:
  // Page size used when a request leaves it 0, and the largest accepted.
  static constexpr uint32_t kDefaultPageSize = 100;
  static constexpr uint32_t kMaxPageSize = 10000;

  // Opens `root` (a directory) and keeps it open: later renames of the root
  // path do not change what is served. If it cannot be opened, every List()
  // returns that error (see status()).
  explicit FileLister(std::string root, FileListerOptions options = {});
  ~FileLister() override;

  FileLister(FileLister&&) noexcept;
  FileLister& operator=(FileLister&&) noexcept;
  FileLister(const FileLister&) = delete;
  FileLister& operator=(const FileLister&) = delete;

  // OK if the root was opened; otherwise why not (NotFound, PermissionDenied,
  // FailedPrecondition when it is not a directory, ResourceExhausted when out
  // of file descriptors).
  absl::Status status() const;

  // The root as given to the constructor.
  const std::string& root() const;

  // Lists the directory `request.path` (not recursively), sorted and paged as
  // requested. Errors: InvalidArgument (malformed path, page size over the
  // cap, bad or mismatched page token), PermissionDenied (path escapes the
  // root, or access denied), NotFound, FailedPrecondition (not a directory),
  // DeadlineExceeded (the directory was not read and sorted by `deadline`),
  // ResourceExhausted (out of file descriptors; the message names the limit).
  //
  // A page holds at most `page_size` entries and at most
  // `max_response_bytes` serialized bytes (always at least one entry): a
  // page cut short by bytes has a next_page_token like any other.
  absl::StatusOr<v1::ListResponse> List(
      const v1::ListRequest& request, absl::Time deadline = absl::InfiniteFuture()) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh

#endif  // FILEMESH_FILE_LISTER_HPP_
