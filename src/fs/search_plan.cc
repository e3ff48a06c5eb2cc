#include "fs/search_plan.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/worker_pool.h"
#include "fs/beneath.h"
#include "fs/clock.h"
#include "fs/errno_status.h"

namespace filemesh::internal {

WorkerPool& WalkerPool() {
  constexpr size_t kMaxQueuedHelpers = 4096;
  static WorkerPool* const pool = new WorkerPool(0, kMaxQueuedHelpers);
  return *pool;
}

bool TypeWanted(v1::FileType wanted, uint8_t dtype) {
  switch (wanted) {
    case v1::FILE_TYPE_UNSPECIFIED:
      return true;
    case v1::FILE_TYPE_FILE:
      return dtype == DT_REG;
    case v1::FILE_TYPE_DIRECTORY:
      return dtype == DT_DIR;
    case v1::FILE_TYPE_SYMLINK:
      return dtype == DT_LNK;
    case v1::FILE_TYPE_OTHER:
      return dtype != DT_REG && dtype != DT_DIR && dtype != DT_LNK;
    default:
      return false;
  }
}

absl::Status PrepareSearch(int root_fd, const FileSearcherOptions& options,
                           const v1::SearchRequest& request, absl::Time deadline, bool streaming,
                           PreparedSearch* out) {
  if (SearchNow() >= deadline) {
    return absl::DeadlineExceededError("the search deadline passed before the walk began");
  }

  const std::string& requested = request.raw_path().empty() ? request.path() : request.raw_path();
  absl::StatusOr<std::string> path = CleanRelativePath(requested);
  if (!path.ok()) return path.status();

  if (!v1::FileType_IsValid(request.type())) {
    return absl::InvalidArgumentError(
        absl::StrCat("type ", static_cast<int>(request.type()), " is unknown"));
  }
  if (request.has_max_depth() && request.max_depth() == 0) {
    return absl::InvalidArgumentError("max_depth must be at least 1 (or unset for no limit)");
  }
  if (request.has_min_size() && request.has_max_size() && request.min_size() > request.max_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_size ", request.min_size(), " is above max_size ", request.max_size()));
  }
  if (!streaming && request.max_results() > FileSearcher::kMaxResults) {
    return absl::InvalidArgumentError(absl::StrCat("max_results ", request.max_results(),
                                                   " is above the limit of ",
                                                   FileSearcher::kMaxResults));
  }

  MatcherLimits limits;
  limits.max_pattern_bytes = options.max_pattern_bytes;
  limits.max_regex_memory = options.max_regex_memory;
  absl::StatusOr<Matcher> matcher =
      Matcher::Create(request.pattern(), request.syntax(), request.case_insensitive(), limits);
  if (!matcher.ok()) return matcher.status();

  absl::StatusOr<UniqueFd> start = OpenDirectoryInScope(root_fd, request.scope(), *path);
  if (!start.ok()) return start.status();

  out->matcher.emplace(*std::move(matcher));
  out->start = *std::move(start);
  SearchParams& params = out->params;
  params.matcher = &*out->matcher;
  params.prefix = *path;
  params.type = request.type();
  params.max_depth =
      request.has_max_depth() ? request.max_depth() : std::numeric_limits<uint32_t>::max();
  params.include_hidden = request.include_hidden();
  params.paths_only = streaming && options.stream_paths_only;
  params.size_filter = request.has_min_size() || request.has_max_size();
  params.min_size = request.has_min_size() ? request.min_size() : 0;
  params.max_size =
      request.has_max_size() ? request.max_size() : std::numeric_limits<uint64_t>::max();
  if (streaming) {
    params.max_results =
        request.max_results() == 0 ? std::numeric_limits<uint64_t>::max() : request.max_results();
    params.max_bytes = std::numeric_limits<uint64_t>::max();
  } else {
    params.max_results =
        request.max_results() == 0 ? FileSearcher::kDefaultMaxResults : request.max_results();
    params.max_bytes = options.max_response_bytes;
  }
  params.deadline = deadline;
  // The operator's setting wins: a request may turn it on, never off.
  params.one_file_system =
      options.one_file_system || (request.has_one_file_system() && request.one_file_system());
  if (params.one_file_system) {
    struct stat start_stat;
    if (::fstat(out->start.get(), &start_stat) != 0) {
      return ErrnoToStatus(errno, "stat", path->empty() ? "." : *path);
    }
    params.start_device = start_stat.st_dev;
  }
  // Targets are judged from where the start directory really is below the
  // root (the walk below it follows no link, so its depths are real).
  params.redaction.outside_targets = options.redact_outside_targets;
  if (params.redaction.outside_targets) {
    const std::optional<int64_t> depth = DepthBelow(root_fd, out->start.get());
    params.redaction.depth_correction =
        depth.has_value() ? std::optional<int64_t>(*depth - LexicalDepth(*path)) : std::nullopt;
  }
  return absl::OkStatus();
}

}  // namespace filemesh::internal
