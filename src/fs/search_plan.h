// A search request, checked and ready to run: the compiled matcher, the open
// start directory and the parameters every search engine applies the same way
// (FileSearcher's walk and FileIndex's index), so both accept and refuse the
// same requests with the same errors.

#ifndef FILEMESH_SRC_FS_SEARCH_PLAN_H_
#define FILEMESH_SRC_FS_SEARCH_PLAN_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "filemesh/file_searcher.hpp"
#include "filemesh/v1/filemesh.pb.h"
#include "fs/entry.h"
#include "fs/matcher.h"
#include "fs/unique_fd.h"

namespace filemesh::internal {

struct SearchParams {
  const Matcher* matcher = nullptr;
  std::string prefix;  // clean search path relative to the root
  v1::FileType type = v1::FILE_TYPE_UNSPECIFIED;
  uint32_t max_depth = 0;
  bool include_hidden = false;
  bool size_filter = false;
  bool paths_only = false;  // FileSearcherOptions::stream_paths_only, when streaming
  uint64_t min_size = 0;
  uint64_t max_size = 0;
  uint64_t max_results = 0;
  uint64_t max_bytes = 0;
  absl::Time deadline;
  // one_file_system: the search stays on the start directory's device.
  bool one_file_system = false;
  dev_t start_device = 0;
  Redaction redaction;
  // Streaming (SearchStream): where matches go as they are found; null to
  // collect them into one sorted answer.
  const SearchBatchCallback* on_batch = nullptr;
  absl::Duration progress_interval = absl::Milliseconds(100);
};

// What one search needs, checked: the matcher, the start directory and the
// parameters (whose `matcher` points into this object, so it stays where it
// was made).
struct PreparedSearch {
  std::optional<Matcher> matcher;
  UniqueFd start;
  SearchParams params;
};

// Checks `request` against `options` and opens its start beneath `root_fd`.
// `streaming`: SearchStream's rules (no byte budget; max_results 0 is no
// limit, and any value is taken). Errors as FileSearcher::Search's.
absl::Status PrepareSearch(int root_fd, const FileSearcherOptions& options,
                           const v1::SearchRequest& request, absl::Time deadline, bool streaming,
                           PreparedSearch* out);

// Walks a prepared search as FileSearcher::Search does, on the calling
// thread and at most `threads` - 1 threads of the WalkerPool (all of them
// for `threads` <= 0). For FileIndex, which walks what its index cannot
// answer without checking the request twice.
absl::StatusOr<v1::SearchResponse> WalkPreparedSearch(PreparedSearch* prepared, int threads);

// The walker threads of the process, shared by every search and index
// build: as many as the CPUs it may use. Never destroyed: searches may still
// run on other threads while the process exits.
class WorkerPool;
WorkerPool& WalkerPool();

// Whether an entry of DT_* type `dtype` is of the requested type.
bool TypeWanted(v1::FileType wanted, uint8_t dtype);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_SEARCH_PLAN_H_
