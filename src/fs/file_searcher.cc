#include "filemesh/file_searcher.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "filemesh/names.hpp"
#include "fs/beneath.h"
#include "fs/clock.h"
#include "fs/dir_reader.h"
#include "fs/entry.h"
#include "fs/errno_status.h"
#include "fs/matcher.h"
#include "fs/worker_pool.h"

namespace filemesh {

using internal::UniqueFd;

namespace {

// A directory is opened by a path relative to a base directory that is still
// open. Once that relative part grows past this many bytes, the walk re-bases
// on the parent's fd, so depth is unlimited while few fds stay open.
constexpr size_t kRebaseBytes = 2048;
// How many entries a worker scans between looks at the clock.
constexpr uint64_t kDeadlineCheckEvery = 1024;

struct WorkItem {
  std::shared_ptr<const UniqueFd> base;
  std::string rel_path;    // exact bytes, relative to the search start ("" is the start)
  size_t base_offset = 0;  // rel_path.substr(base_offset) is relative to `base`
  uint32_t depth = 0;      // the start directory is depth 0
};

struct SearchParams {
  const internal::Matcher* matcher;
  std::string prefix;  // clean search path relative to the root
  v1::FileType type;
  uint32_t max_depth;
  bool include_hidden;
  bool size_filter;
  uint64_t min_size;
  uint64_t max_size;
  uint64_t max_results;
  uint64_t max_bytes;
  absl::Time deadline;
};

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

// The walker threads of the process, shared by every search: as many as the
// CPUs it may use. Never destroyed: searches may still run on other threads
// while the process exits.
internal::WorkerPool& WalkerPool() {
  constexpr size_t kMaxQueuedHelpers = 4096;
  static internal::WorkerPool* const pool = new internal::WorkerPool(0, kMaxQueuedHelpers);
  return *pool;
}

// One parallel walk: a LIFO of directories shared by the workers (depth-first
// keeps the stack short), per-worker buffers, and a stop flag for the caps.
// The calling thread walks; threads of the process's WalkerPool join it when
// they are free. A helper that comes after the walk ended only drops its
// reference (the walk is shared for that); none touches `params` after Run.
class Walk : public std::enable_shared_from_this<Walk> {
 public:
  explicit Walk(const SearchParams& params) : params_(params) {}

  void Run(std::shared_ptr<const UniqueFd> start, int helpers) {
    WorkItem first;
    first.base = std::move(start);
    stack_.push_back(std::move(first));
    internal::WorkerPool& pool = WalkerPool();
    helpers = std::min(helpers, static_cast<int>(pool.threads()));
    for (int i = 0; i < helpers; ++i) {
      if (!pool.Submit([self = shared_from_this()] { self->Help(); })) break;
    }
    Work();
    std::unique_lock<std::mutex> lock(mu_);
    closed_ = true;
    helpers_done_.wait(lock, [this] { return helpers_ == 0; });
  }

  v1::SearchResponse TakeResponse() {
    std::sort(matches_.begin(), matches_.end(), [](const v1::FileEntry& a, const v1::FileEntry& b) {
      return ExactPath(a) < ExactPath(b);
    });
    v1::SearchResponse response;
    response.mutable_matches()->Reserve(static_cast<int>(matches_.size()));
    for (v1::FileEntry& e : matches_) response.add_matches()->Swap(&e);
    const int reason = truncation_.load();
    response.set_truncated(reason != v1::TRUNCATION_REASON_UNSPECIFIED);
    response.set_truncation_reason(static_cast<v1::TruncationReason>(reason));
    response.set_scanned_entries(scanned_.load());
    response.set_skipped_directories(skipped_.load());
    return response;
  }

 private:
  struct Worker {
    internal::DirReader reader;
    std::string path;
    std::vector<WorkItem> children;
    std::vector<v1::FileEntry> matches;
    uint64_t scanned = 0;
    uint64_t skipped = 0;
  };

  // A pool thread's turn: join the walk unless it is over.
  void Help() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      ++helpers_;
    }
    Work();
    std::lock_guard<std::mutex> lock(mu_);
    if (--helpers_ == 0) helpers_done_.notify_all();
  }

  void Work() {
    Worker w;
    WorkItem item;
    while (Pop(&item)) {
      Process(item, w);
      Push(&w.children);
    }
    scanned_ += w.scanned;
    skipped_ += w.skipped;
    std::lock_guard<std::mutex> lock(mu_);
    for (v1::FileEntry& e : w.matches) matches_.push_back(std::move(e));
  }

  bool Pop(WorkItem* out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopped_.load() || !stack_.empty() || active_ == 0; });
    if (stopped_.load() || stack_.empty()) return false;
    *out = std::move(stack_.back());
    stack_.pop_back();
    ++active_;
    return true;
  }

  void Push(std::vector<WorkItem>* children) {
    std::lock_guard<std::mutex> lock(mu_);
    --active_;
    const bool added = !children->empty();
    for (WorkItem& c : *children) stack_.push_back(std::move(c));
    children->clear();
    if (added || active_ == 0) cv_.notify_all();
  }

  void Stop(v1::TruncationReason reason) {
    int none = v1::TRUNCATION_REASON_UNSPECIFIED;
    truncation_.compare_exchange_strong(none, reason);
    stopped_.store(true);
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }

  bool ShouldStop() {
    if (stopped_.load(std::memory_order_relaxed)) return true;
    if (internal::SearchNow() >= params_.deadline) {
      Stop(v1::TRUNCATION_REASON_DEADLINE);
      return true;
    }
    return false;
  }

  void Process(WorkItem& item, Worker& w) {
    if (ShouldStop()) return;
    // Keep this directory's fd shareable: children past kRebaseBytes use it
    // as their base.
    std::shared_ptr<const UniqueFd> base = std::move(item.base);
    std::shared_ptr<const UniqueFd> self;
    int fd;
    if (item.base_offset == item.rel_path.size()) {
      self = base;
      fd = self->get();
    } else {
      const std::string rel = item.rel_path.substr(item.base_offset);
      fd = internal::OpenSubdirectoryNoFollow(base->get(), rel);
      if (fd < 0) {
        ++w.skipped;  // permission denied, or replaced by a link or file meanwhile
        return;
      }
      self = std::make_shared<const UniqueFd>(fd);
    }

    const SearchParams& p = params_;
    const uint32_t depth = item.depth + 1;
    const bool report_here = depth <= p.max_depth;
    const bool descend = depth < p.max_depth;
    const size_t dir_len = item.rel_path.size();
    const bool rebase = dir_len - item.base_offset > kRebaseBytes;
    std::string& path = w.path;
    path.assign(item.rel_path);

    w.reader.Reset(fd);
    internal::DirEntry e;
    while (w.reader.Next(&e)) {
      if (++w.scanned % kDeadlineCheckEvery == 0 && ShouldStop()) return;
      if (!p.include_hidden && e.name.front() == '.') continue;
      path.resize(dir_len);
      if (dir_len != 0) path += '/';
      path.append(e.name);

      uint8_t type = e.type;
      struct stat st;
      bool have_stat = false;
      if (type == DT_UNKNOWN) {
        if (internal::StatAt(fd, e.name.data(), &st) != 0) continue;  // gone meanwhile
        have_stat = true;
        type = internal::DirentTypeFromMode(st.st_mode);
      }

      if (report_here && TypeWanted(p.type, type) && (!p.size_filter || type == DT_REG) &&
          p.matcher->Match(p.matcher->matches_path() ? std::string_view(path) : e.name)) {
        if (!have_stat && internal::StatAt(fd, e.name.data(), &st) == 0) have_stat = true;
        const auto size = static_cast<uint64_t>(st.st_size);
        if (have_stat && (!p.size_filter || (size >= p.min_size && size <= p.max_size))) {
          if (match_count_.fetch_add(1) >= p.max_results) {
            Stop(v1::TRUNCATION_REASON_MAX_RESULTS);
            return;
          }
          v1::FileEntry& entry = w.matches.emplace_back();
          internal::FillEntry(fd, internal::JoinPath(p.prefix, path), e.name, st, &entry);
          const uint64_t bytes = internal::RepeatedFieldBytes(entry);
          if (bytes_.fetch_add(bytes) + bytes > p.max_bytes) {
            w.matches.pop_back();
            Stop(v1::TRUNCATION_REASON_MAX_BYTES);
            return;
          }
        }
      }

      if (type == DT_DIR && descend) {
        WorkItem child;
        child.rel_path = path;
        child.depth = depth;
        if (rebase) {
          child.base = self;
          child.base_offset = dir_len + (dir_len != 0 ? 1 : 0);
        } else {
          child.base = base;
          child.base_offset = item.base_offset;
        }
        w.children.push_back(std::move(child));
      }
    }
    if (w.reader.error() != 0) ++w.skipped;
  }

  const SearchParams& params_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WorkItem> stack_;
  int active_ = 0;
  std::atomic<bool> stopped_{false};
  std::atomic<int> truncation_{v1::TRUNCATION_REASON_UNSPECIFIED};
  std::atomic<uint64_t> match_count_{0};
  std::atomic<uint64_t> bytes_{0};  // serialized bytes of the matches kept
  bool closed_ = false;             // Run is done with the walk (guarded by mu_)
  int helpers_ = 0;                 // pool threads inside Work (guarded by mu_)
  std::condition_variable helpers_done_;
  std::atomic<uint64_t> scanned_{0};
  std::atomic<uint64_t> skipped_{0};
  std::vector<v1::FileEntry> matches_;
};

std::atomic<internal::NowFunction> search_clock{nullptr};

}  // namespace

namespace internal {

absl::Time SearchNow() {
  const NowFunction now = search_clock.load(std::memory_order_relaxed);
  return now != nullptr ? now() : absl::Now();
}

void SetSearchClockForTesting(NowFunction now) { search_clock.store(now); }

}  // namespace internal

struct FileSearcher::Impl {
  std::string root;
  UniqueFd root_fd;
  absl::Status root_status;
  FileSearcherOptions options;
};

FileSearcher::FileSearcher(std::string root, FileSearcherOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->root = std::move(root);
  impl_->options = options;
  impl_->root_fd.Reset(::open(impl_->root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!impl_->root_fd.valid()) {
    impl_->root_status = internal::ErrnoToStatus(errno, "open root", impl_->root);
  }
}
FileSearcher::~FileSearcher() = default;
FileSearcher::FileSearcher(FileSearcher&&) noexcept = default;
FileSearcher& FileSearcher::operator=(FileSearcher&&) noexcept = default;

absl::Status FileSearcher::status() const { return impl_->root_status; }
const std::string& FileSearcher::root() const { return impl_->root; }

absl::StatusOr<v1::SearchResponse> FileSearcher::Search(const v1::SearchRequest& request,
                                                        absl::Time deadline) const {
  if (!impl_->root_status.ok()) return impl_->root_status;
  if (internal::SearchNow() >= deadline) {
    return absl::DeadlineExceededError("the search deadline passed before the walk began");
  }

  const std::string& requested = request.raw_path().empty() ? request.path() : request.raw_path();
  absl::StatusOr<std::string> path = internal::CleanRelativePath(requested);
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
  if (request.max_results() > kMaxResults) {
    return absl::InvalidArgumentError(absl::StrCat("max_results ", request.max_results(),
                                                   " is above the limit of ", kMaxResults));
  }

  internal::MatcherLimits limits;
  limits.max_pattern_bytes = impl_->options.max_pattern_bytes;
  limits.max_regex_memory = impl_->options.max_regex_memory;
  absl::StatusOr<internal::Matcher> matcher = internal::Matcher::Create(
      request.pattern(), request.syntax(), request.case_insensitive(), limits);
  if (!matcher.ok()) return matcher.status();

  absl::StatusOr<UniqueFd> start = internal::OpenDirectoryBeneath(impl_->root_fd.get(), *path);
  if (!start.ok()) return start.status();

  SearchParams params;
  params.matcher = &*matcher;
  params.prefix = *path;
  params.type = request.type();
  params.max_depth =
      request.has_max_depth() ? request.max_depth() : std::numeric_limits<uint32_t>::max();
  params.include_hidden = request.include_hidden();
  params.size_filter = request.has_min_size() || request.has_max_size();
  params.min_size = request.has_min_size() ? request.min_size() : 0;
  params.max_size =
      request.has_max_size() ? request.max_size() : std::numeric_limits<uint64_t>::max();
  params.max_results = request.max_results() == 0 ? kDefaultMaxResults : request.max_results();
  params.max_bytes = impl_->options.max_response_bytes;
  params.deadline = deadline;

  const int threads = impl_->options.threads;
  const int helpers = threads <= 0 ? std::numeric_limits<int>::max() : threads - 1;
  auto walk = std::make_shared<Walk>(params);
  walk->Run(std::make_shared<const UniqueFd>(*std::move(start)), helpers);
  return walk->TakeResponse();
}

}  // namespace filemesh
