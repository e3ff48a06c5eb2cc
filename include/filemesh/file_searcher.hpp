// FileSearcher finds entries whose name (or relative path) matches a pattern
// anywhere under a directory of its root.
//
// The walk runs on the calling thread, helped by threads of one pool that all
// FileSearchers of the process share (as many as the CPUs the process may
// use, cgroup quota included; searches never start threads of their own).
// It is iterative (any depth), never follows a
// symbolic link (links are reported as entries, not descended into), so it
// can neither leave the root nor loop. The starting path is resolved like
// FileLister's (see file_lister.hpp). Unreadable directories are counted in
// `skipped_directories` and skipped; running out of file descriptors is not
// a skip but an error (ResourceExhausted) that ends the search. With
// one_file_system (FileSearcherOptions', which a request may turn on but
// never off) it never enters a directory on another device than its
// start (counted in `other_filesystem_directories`; the mount point is still
// an entry).
//
// Thread safety: Search() may be called from any number of threads at once.

#ifndef FILEMESH_FILE_SEARCHER_HPP_
#define FILEMESH_FILE_SEARCHER_HPP_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/file_service.hpp"
#include "filemesh/v1/filemesh.pb.h"

namespace filemesh {

struct FileSearcherOptions {
  // Threads walking one search: the caller plus up to threads - 1 from the
  // shared pool; 0 means the caller plus the whole pool. Pool threads have
  // the process's credentials: a caller that changes its own thread's
  // (setfsuid, capabilities) to search on someone's behalf should set 1.
  int threads = 0;
  // Serialized bytes of one answer's matches at most: a search that reaches
  // it stops, truncated with TRUNCATION_REASON_MAX_BYTES.
  size_t max_response_bytes = kDefaultMaxResponseBytes;
  // Longest pattern accepted, in bytes.
  size_t max_pattern_bytes = 4096;
  // Memory budget of one compiled regular expression (RE2 max_mem). A
  // pattern that needs more is InvalidArgument.
  int64_t max_regex_memory = 8 << 20;
  // True keeps every walk on the filesystem of its start directory, whatever
  // the request says (SearchRequest.one_file_system may only turn it on).
  bool one_file_system = false;
  // Withhold the target text of symlinks whose target leaves the root (see
  // FileEntry.symlink_target_redacted). For a searcher that serves others.
  bool redact_outside_targets = false;
  // SearchStream only: matches carry their path, name and type (as the
  // directory entry gives it) and nothing else of FileEntry (no size, mode,
  // modified or symlink target), which spares an lstat per match, for
  // callers that only show paths. Searches with a size bound still stat. A
  // match removed between the directory read and its report is reported.
  bool stream_paths_only = false;
};

// One delivery of FileSearcher::SearchStream.
struct SearchBatch {
  // Matches found since the previous batch, in the order found (not
  // sorted); may be empty when the batch only reports progress.
  std::vector<v1::FileEntry> matches;
  // Entries looked at so far, and matches delivered so far (this batch's
  // included): for progress displays. The scan count lags by up to a few
  // thousand entries; the summary SearchStream returns is exact.
  uint64_t scanned_entries = 0;
  uint64_t matches_so_far = 0;
};

// Called by SearchStream on its calling thread only, one batch at a time.
// Return false to stop the search (SearchStream then returns Cancelled).
using SearchBatchCallback = std::function<bool(SearchBatch& batch)>;

class FileSearcher : public FileSearcherInterface {
 public:
  static constexpr uint32_t kDefaultMaxResults = 1000;
  static constexpr uint32_t kMaxResults = 100000;

  // Opens `root` and keeps it open (see FileLister).
  explicit FileSearcher(std::string root, FileSearcherOptions options = {});
  ~FileSearcher() override;

  FileSearcher(FileSearcher&&) noexcept;
  FileSearcher& operator=(FileSearcher&&) noexcept;
  FileSearcher(const FileSearcher&) = delete;
  FileSearcher& operator=(const FileSearcher&) = delete;

  // OK if the root was opened; otherwise why not.
  absl::Status status() const;

  const std::string& root() const;

  // Walks `request.path` and returns the matching entries sorted by path.
  // When `max_results` or `max_response_bytes` is reached or `deadline`
  // passes, returns what was found with `truncated` set and the reason. Errors: InvalidArgument
  // (bad pattern, regex too large, max_results over the cap, max_depth 0, min_size above max_size,
  // malformed path), PermissionDenied, NotFound, FailedPrecondition (path is not a directory),
  // DeadlineExceeded (deadline already passed before the walk began), ResourceExhausted (the
  // process or the system ran out of file descriptors, at the start or during the walk: the
  // message names the limit; no partial answer is returned).
  absl::StatusOr<v1::SearchResponse> Search(
      const v1::SearchRequest& request,
      absl::Time deadline = absl::InfiniteFuture()) const override;

  // Search, streamed: matches go to `on_batch` as they are found instead of
  // into one sorted answer, so there is no byte budget and `max_results` 0
  // means no limit (any value is accepted). Same filters, same errors
  // (returned before the first batch), same deadline. `on_batch` runs on the
  // calling thread only, at least every `progress_interval` while the walk
  // goes on (an empty batch when nothing matched meanwhile); a batch is every
  // match waiting when it is taken. Walkers hand matches over 256 at a time
  // and wait while 4,096 are waiting, so a batch holds at most 4,096 plus 256
  // per walker thread: a slow consumer slows the walk, memory stays bounded.
  // Returns the summary: a SearchResponse without matches (truncated,
  // truncation_reason, scanned_entries, skipped_directories), or Cancelled
  // when `on_batch` returned false, or ResourceExhausted when the walk ran
  // out of file descriptors (the batches delivered before stay delivered).
  absl::StatusOr<v1::SearchResponse> SearchStream(
      const v1::SearchRequest& request, const SearchBatchCallback& on_batch,
      absl::Time deadline = absl::InfiniteFuture(),
      absl::Duration progress_interval = absl::Milliseconds(100)) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh

#endif  // FILEMESH_FILE_SEARCHER_HPP_
