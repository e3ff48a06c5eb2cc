#include "filemesh/file_searcher.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <iterator>
#include <limits>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/worker_pool.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/names.hpp"
#include "fs/beneath.h"
#include "fs/clock.h"
#include "fs/dir_reader.h"
#include "fs/directory_fds.h"
#include "fs/entry.h"
#include "fs/errno_status.h"
#include "fs/match_stream.h"
#include "fs/matcher.h"
#include "fs/search_plan.h"
#include "fs/walk_scheduler.h"

namespace filemesh {

using internal::UniqueFd;

namespace {

using internal::DirectoryFds;
using internal::MatchStream;
using internal::PreparedSearch;
using internal::SearchParams;
using internal::TypeWanted;
using internal::WalkScheduler;
using internal::WorkItem;

// How many entries a worker scans between looks at the clock.
constexpr uint64_t kDeadlineCheckEvery = 1024;

// One parallel walk: its walkers (the calling thread, and threads of the
// process's WalkerPool that join it when they are free) share directories
// through a WalkScheduler, open them under a DirectoryFds policy and, for
// SearchStream, hand matches to the caller through a MatchStream. Per-worker
// buffers, and a stop flag for the caps. A helper that comes after the walk
// ended only drops its reference (the walk is shared for that); none touches
// `params` after Run.
class Walk : public std::enable_shared_from_this<Walk> {
 public:
  Walk(const SearchParams& params, std::shared_ptr<const UniqueFd> start)
      : params_(params), scheduler_(FirstItem(std::move(start)), &stopped_) {
    if (params_.on_batch != nullptr) {
      stream_.emplace(params_.on_batch, params_.progress_interval,
                      [this] { scheduler_.MatchesPending(); });
    }
  }

  void Run(int helpers) {
    internal::WorkerPool& pool = internal::WalkerPool();
    helpers = std::min(helpers, static_cast<int>(pool.threads()));
    for (int i = 0; i < helpers; ++i) {
      if (!pool.Submit([self = shared_from_this()] { self->Help(); })) break;
    }
    Work(/*caller=*/true);
    scheduler_.Close();
    if (stream_.has_value()) {
      // Every walker is done: the count is exact now.
      scanned_live_.store(scanned_.load());
      stream_->Deliver(/*force=*/true, scanned_live_.load());
    }
  }

  // SearchStream's callback returned false.
  bool cancelled() { return stream_.has_value() && stream_->cancelled(); }

  // Why the walk failed (it ran out of descriptors), or OK. A copy of its
  // own, not one sharing error_'s reference-counted rep: the last reference
  // to the Walk may be dropped by a helper thread after the caller is done,
  // and absl::Status counts its references inside Debian's uninstrumented
  // libabsl_status, so ThreadSanitizer would see the helper free the message
  // the caller read without seeing the order between them.
  absl::Status error() {
    internal::MutexLock lock(&mu_);
    if (error_.ok()) return absl::OkStatus();
    return absl::Status(error_.code(), error_.message());
  }

  v1::SearchResponse TakeResponse() {
    internal::MutexLock lock(&mu_);  // every walker is done: never contended
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
    response.set_other_filesystem_directories(other_filesystem_.load());
    return response;
  }

 private:
  struct Worker {
    internal::DirReader reader;
    std::string path;
    std::vector<WorkItem> stack;  // directories to read, the next one last
    std::vector<v1::FileEntry> matches;
    uint64_t scanned = 0;
    uint64_t skipped = 0;
    uint64_t other_filesystem = 0;
  };

  static WorkItem FirstItem(std::shared_ptr<const UniqueFd> start) {
    WorkItem first;
    first.base = std::move(start);
    return first;
  }

  bool streaming() const { return stream_.has_value(); }

  // A pool thread's turn: join the walk unless it is over.
  void Help() {
    if (!scheduler_.Join()) return;
    Work(/*caller=*/false);
    scheduler_.Leave();
  }

  // The streaming caller's turn to hand matches (or progress) over.
  void Deliver(bool force) {
    if (!stream_->Deliver(force, scanned_live_.load(std::memory_order_relaxed))) {
      Stop(v1::TRUNCATION_REASON_UNSPECIFIED);
    }
  }

  // A worker's matches to the stream; the caller delivers them at once.
  void Publish(Worker& w, bool caller) {
    stream_->Publish(&w.matches, caller);
    if (caller) Deliver(/*force=*/false);
  }

  // `caller`: the thread that called Search or SearchStream, the only one
  // that runs the stream's callback.
  void Work(bool caller) {
    Worker w;
    const bool deliverer = caller && streaming();
    for (;;) {
      if (stopped_.load(std::memory_order_relaxed)) {
        w.stack.clear();
        break;
      }
      if (w.stack.empty()) {
        const WalkScheduler::Next next = TakeWork(&w.stack, deliverer);
        if (next == WalkScheduler::Next::kDone) break;
        if (next == WalkScheduler::Next::kDeliver) {
          Deliver(/*force=*/false);
          continue;
        }
      }
      WorkItem item = std::move(w.stack.back());
      w.stack.pop_back();
      Process(item, w, caller);
      if (streaming()) {
        if (!w.matches.empty()) {
          Publish(w, caller);
        } else if (deliverer && stream_->pending_count().load(std::memory_order_relaxed) > 0) {
          Deliver(/*force=*/false);
        }
      }
      if (w.stack.size() > 1 && scheduler_.SomeoneWaits()) scheduler_.Share(&w.stack);
    }
    Finish(w, caller);
  }

  WalkScheduler::Next TakeWork(std::vector<WorkItem>* stack, bool deliverer) {
    if (!deliverer) return scheduler_.Take(stack, nullptr, absl::InfiniteFuture());
    const absl::Time tick =
        absl::Now() + std::max(params_.progress_interval, absl::Milliseconds(1));
    return scheduler_.Take(stack, &stream_->pending_count(), tick);
  }

  // A worker is done: its counts to the walk, its matches to the stream or
  // to the answer.
  void Finish(Worker& w, bool caller) {
    scanned_ += w.scanned;
    skipped_ += w.skipped;
    other_filesystem_ += w.other_filesystem;
    if (streaming()) {
      if (!w.matches.empty()) Publish(w, caller);
      return;
    }
    internal::MutexLock lock(&mu_);
    for (v1::FileEntry& e : w.matches) matches_.push_back(std::move(e));
  }

  void Stop(v1::TruncationReason reason) {
    int none = v1::TRUNCATION_REASON_UNSPECIFIED;
    truncation_.compare_exchange_strong(none, reason);
    stopped_.store(true);
    scheduler_.Wake();
    if (stream_.has_value()) stream_->Stop();
  }

  // Ends the walk with an error; the first one is kept.
  void Fail(absl::Status status) {
    {
      internal::MutexLock lock(&mu_);
      if (error_.ok()) error_ = std::move(status);
    }
    Stop(v1::TRUNCATION_REASON_UNSPECIFIED);
  }

  bool ShouldStop() {
    if (stopped_.load(std::memory_order_relaxed)) return true;
    // No deadline, no clock to read (once per directory otherwise).
    if (params_.deadline != absl::InfiniteFuture() && internal::SearchNow() >= params_.deadline) {
      Stop(v1::TRUNCATION_REASON_DEADLINE);
      return true;
    }
    return false;
  }

  // Opens `item`'s directory by its path relative to its base (see
  // DirectoryFds). Null when it is not to be walked: gone or denied (counted
  // as skipped), on another filesystem with one_file_system (counted), or
  // the process is out of descriptors (the walk fails).
  std::shared_ptr<const UniqueFd> OpenItem(const WorkItem& item, Worker& w) {
    if (item.base_offset == item.rel_path.size()) return item.base;
    const std::string rel = item.rel_path.substr(item.base_offset);
    const int fd = internal::OpenSubdirectoryNoFollow(item.base->get(), rel);
    if (fd == -EMFILE || fd == -ENFILE) {
      // Not this directory's fault: skipping would quietly drop the rest.
      Fail(internal::ErrnoToStatus(-fd, "open", internal::JoinPath(params_.prefix, item.rel_path)));
      return nullptr;
    }
    if (fd < 0) {
      ++w.skipped;  // permission denied, or replaced by a link or file meanwhile
      return nullptr;
    }
    std::shared_ptr<const UniqueFd> self = fds_.Hold(fd);
    struct stat dir_stat;
    if (params_.one_file_system &&
        (::fstat(fd, &dir_stat) != 0 || dir_stat.st_dev != params_.start_device)) {
      ++w.other_filesystem;  // a mount point: reported as an entry, not walked
      return nullptr;
    }
    return self;
  }

  // One directory being read: its entries' paths are built in the worker's
  // buffer, only when needed (a path pattern, a match, a directory to
  // descend).
  struct Directory {
    const WorkItem& item;
    std::shared_ptr<const UniqueFd> base;  // the item's base
    std::shared_ptr<const UniqueFd> self;  // this directory
    uint32_t depth;                        // of its entries
    bool rebase;                           // children open relative to `self`
    std::string* path;
    size_t prefix_len;  // path[0, prefix_len) is the directory's path and '/'

    const std::string& EntryPath(std::string_view name) const {
      path->resize(prefix_len);
      path->append(name);
      return *path;
    }
  };

  void Process(WorkItem& item, Worker& w, bool caller) {
    if (ShouldStop()) return;
    std::shared_ptr<const UniqueFd> self = OpenItem(item, w);
    if (self == nullptr) return;
    const size_t dir_len = item.rel_path.size();
    // Keep the base shareable: children not rebased on `self` use it.
    Directory dir{item,
                  std::move(item.base),
                  self,
                  item.depth + 1,
                  fds_.ShouldRebase(dir_len - item.base_offset),
                  &w.path,
                  0};
    w.path.assign(item.rel_path);
    if (dir_len != 0) w.path += '/';
    dir.prefix_len = w.path.size();

    internal::DirEntry e;
    w.reader.Reset(self->get());
    while (w.reader.Next(&e)) {
      if (++w.scanned % kDeadlineCheckEvery == 0 && !Checkpoint(caller)) return;
      if (!params_.include_hidden && e.name.front() == '.') continue;
      if (!ProcessEntry(dir, e, w, caller)) return;
    }
    if (w.reader.error() != 0) ++w.skipped;
  }

  // Every kDeadlineCheckEvery entries: progress, the deadline, and for the
  // streaming caller a delivery turn. False when the walk is to stop.
  bool Checkpoint(bool caller) {
    scanned_live_.fetch_add(kDeadlineCheckEvery, std::memory_order_relaxed);
    if (ShouldStop()) return false;
    if (streaming() && caller && stream_->Due()) Deliver(/*force=*/false);
    return true;
  }

  // One entry: reported if it matches, queued if it is a directory to walk.
  // False when the walk is to stop (a cap was reached).
  bool ProcessEntry(const Directory& dir, const internal::DirEntry& e, Worker& w, bool caller) {
    const SearchParams& p = params_;
    const int fd = dir.self->get();
    uint8_t type = e.type;
    struct stat st;
    bool have_stat = false;
    if (type == DT_UNKNOWN) {
      if (internal::StatAt(fd, e.name.data(), &st) != 0) return true;  // gone meanwhile
      have_stat = true;
      type = internal::DirentTypeFromMode(st.st_mode);
    }
    if (dir.depth <= p.max_depth && TypeWanted(p.type, type) &&
        (!p.size_filter || type == DT_REG) &&
        p.matcher->Match(p.matcher->matches_path() ? std::string_view(dir.EntryPath(e.name))
                                                   : e.name)) {
      if (!ReportMatch(dir, e, type, have_stat ? &st : nullptr, w, caller)) return false;
    }
    if (type == DT_DIR && dir.depth < p.max_depth) {
      WorkItem child;
      child.rel_path = dir.EntryPath(e.name);
      child.depth = dir.depth;
      child.base = dir.rebase ? dir.self : dir.base;
      child.base_offset = dir.rebase ? dir.prefix_len : dir.item.base_offset;
      w.stack.push_back(std::move(child));
    }
    return true;
  }

  // A matching entry, `st` its lstat when already read: kept if it passes the
  // size bound, within the caps. False when a cap stopped the walk.
  bool ReportMatch(const Directory& dir, const internal::DirEntry& e, uint8_t type,
                   const struct stat* st, Worker& w, bool caller) {
    const SearchParams& p = params_;
    const int fd = dir.self->get();
    // SearchStream for paths only, no size bound: no lstat per match.
    const bool paths_only = p.paths_only && !p.size_filter;
    struct stat read;
    if (st == nullptr && !paths_only && internal::StatAt(fd, e.name.data(), &read) == 0) {
      st = &read;
    }
    if (st == nullptr && !paths_only) return true;  // gone meanwhile
    if (p.size_filter && (static_cast<uint64_t>(st->st_size) < p.min_size ||
                          static_cast<uint64_t>(st->st_size) > p.max_size)) {
      return true;
    }
    if (match_count_.fetch_add(1) >= p.max_results) {
      Stop(v1::TRUNCATION_REASON_MAX_RESULTS);
      return false;
    }
    v1::FileEntry& entry = w.matches.emplace_back();
    std::string joined;  // the usual search from the root has no path to join
    const std::string_view match_path =
        p.prefix.empty() ? std::string_view(dir.EntryPath(e.name))
                         : (joined = internal::JoinPath(p.prefix, dir.EntryPath(e.name)));
    if (paths_only) {
      internal::FillPathEntry(match_path, e.name, type, &entry);
    } else {
      internal::FillEntry(fd, match_path, e.name, *st, p.redaction, &entry);
    }
    const uint64_t bytes = internal::RepeatedFieldBytes(entry);
    if (bytes_.fetch_add(bytes) + bytes > p.max_bytes) {
      w.matches.pop_back();
      Stop(v1::TRUNCATION_REASON_MAX_BYTES);
      return false;
    }
    if (streaming() && w.matches.size() >= MatchStream::kBatch) Publish(w, caller);
    return true;
  }

  const SearchParams& params_;
  std::atomic<bool> stopped_{false};
  WalkScheduler scheduler_;            // after stopped_, which it reads
  std::optional<MatchStream> stream_;  // SearchStream only
  DirectoryFds fds_;
  std::atomic<int> truncation_{v1::TRUNCATION_REASON_UNSPECIFIED};
  std::atomic<uint64_t> match_count_{0};
  std::atomic<uint64_t> bytes_{0};  // serialized bytes of the matches kept
  std::atomic<uint64_t> scanned_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> other_filesystem_{0};
  // Entries scanned, counted in steps while the walk goes on, for progress.
  std::atomic<uint64_t> scanned_live_{0};
  internal::Mutex mu_;
  // Search only: every walker's matches, added as it ends.
  std::vector<v1::FileEntry> matches_ ABSL_GUARDED_BY(mu_);
  // The first error that ended the walk.
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

std::atomic<internal::NowFunction> search_clock{nullptr};

// Pool threads that may join one walk of `threads` walkers.
int HelpersFor(int threads) { return threads <= 0 ? std::numeric_limits<int>::max() : threads - 1; }

}  // namespace

namespace internal {

absl::Time SearchNow() {
  const NowFunction now = search_clock.load(std::memory_order_relaxed);
  return now != nullptr ? now() : absl::Now();
}

void SetSearchClockForTesting(NowFunction now) { search_clock.store(now); }

absl::StatusOr<v1::SearchResponse> WalkPreparedSearch(PreparedSearch* prepared, int threads) {
  auto walk = std::make_shared<Walk>(prepared->params,
                                     std::make_shared<const UniqueFd>(std::move(prepared->start)));
  walk->Run(HelpersFor(threads));
  if (absl::Status error = walk->error(); !error.ok()) return error;
  return walk->TakeResponse();
}

}  // namespace internal

struct FileSearcher::Impl {
  std::string root;
  UniqueFd root_fd;
  absl::Status root_status;
  FileSearcherOptions options;

  // Checks `request` and opens its start (see PrepareSearch).
  absl::Status Prepare(const v1::SearchRequest& request, absl::Time deadline, bool streaming,
                       PreparedSearch* out) const {
    if (!root_status.ok()) return root_status;
    return internal::PrepareSearch(root_fd.get(), options, request, deadline, streaming, out);
  }

  // Pool threads that may join one walk.
  int Helpers() const { return HelpersFor(options.threads); }
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
  PreparedSearch prepared;
  if (absl::Status status = impl_->Prepare(request, deadline, /*streaming=*/false, &prepared);
      !status.ok()) {
    return status;
  }
  return internal::WalkPreparedSearch(&prepared, impl_->options.threads);
}

absl::StatusOr<v1::SearchResponse> FileSearcher::SearchStream(
    const v1::SearchRequest& request, const SearchBatchCallback& on_batch, absl::Time deadline,
    absl::Duration progress_interval) const {
  if (!on_batch) return absl::InvalidArgumentError("SearchStream needs a callback");
  PreparedSearch prepared;
  if (absl::Status status = impl_->Prepare(request, deadline, /*streaming=*/true, &prepared);
      !status.ok()) {
    return status;
  }
  prepared.params.on_batch = &on_batch;
  prepared.params.progress_interval = progress_interval;
  auto walk = std::make_shared<Walk>(prepared.params,
                                     std::make_shared<const UniqueFd>(std::move(prepared.start)));
  walk->Run(impl_->Helpers());
  if (walk->cancelled()) return absl::CancelledError("the search was stopped by its caller");
  if (absl::Status error = walk->error(); !error.ok()) return error;
  return walk->TakeResponse();
}

}  // namespace filemesh
