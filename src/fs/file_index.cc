#include "filemesh/file_index.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <limits>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/worker_pool.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/names.hpp"
#include "fs/beneath.h"
#include "fs/change_watcher.h"
#include "fs/clock.h"
#include "fs/dir_reader.h"
#include "fs/directory_fds.h"
#include "fs/entry.h"
#include "fs/errno_status.h"
#include "fs/index_snapshot.h"
#include "fs/index_testing.h"
#include "fs/name_tree.h"
#include "fs/search_plan.h"
#include "fs/walk_scheduler.h"

namespace filemesh {

using internal::NameTree;
using internal::UniqueFd;
using Id = NameTree::Id;

namespace {

// How often a quiet index moves its as_of on (index_as_of, the lag metric).
constexpr absl::Duration kHeartbeat = absl::Milliseconds(250);
// Reading attributes after a build takes seconds (an lstat per entry): it is
// done in slices this long, reports applied between them.
constexpr absl::Duration kAttributeSlice = absl::Milliseconds(20);

// Entries a search looks at between looks at the clock.
constexpr uint64_t kDeadlineCheckEvery = 1024;

// One entry of a directory as read from the disk; its name lies in the
// Listing's buffer.
struct Listed {
  std::string_view name;
  uint8_t type;
  uint64_t inode;
};

// A directory's entries as read: the names back to back in one buffer (no
// allocation per name; measured: names past the 15 bytes std::string keeps
// inline cost a malloc each, several percent of a build).
struct Listing {
  std::string names;
  std::vector<Listed> entries;
  std::vector<size_t> starts;  // ReadEntries': where each name begins in `names`
};

// Reads the entries of the open directory `fd` (from its start) into `out`;
// an entry whose type the filesystem does not give is lstat'ed (skipped if
// it is gone meanwhile). False when the directory could not be read to its
// end.
bool ReadEntries(int fd, internal::DirReader* reader, Listing* out) {
  out->names.clear();
  out->entries.clear();
  out->starts.clear();
  reader->Reset(fd);
  internal::DirEntry e;
  while (reader->Next(&e)) {
    uint8_t type = e.type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (internal::StatAt(fd, e.name.data(), &st) != 0) continue;
      type = internal::DirentTypeFromMode(st.st_mode);
    }
    // The name's offset for now (the buffer may still move): made a view below.
    out->entries.push_back(Listed{std::string_view(nullptr, out->names.size()), type, e.inode});
    out->names.append(e.name);
  }
  for (size_t i = 0; i < out->entries.size(); ++i) {
    const size_t at = out->entries[i].name.size();
    const size_t end =
        i + 1 < out->entries.size() ? out->entries[i + 1].name.size() : out->names.size();
    out->entries[i].name = std::string_view(out->names.data() + at, end - at);
  }
  return reader->error() == 0;
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
}

bool IsOutOfDescriptors(int error) { return error == EMFILE || error == ENFILE; }

// PauseIndexFollowingForTesting's state: which loops follow, which are
// parked.
struct FollowPause {
  internal::Mutex mu;
  internal::CondVar changed{&mu};
  bool paused ABSL_GUARDED_BY(mu) = false;
  // The wake-up eventfd of each loop that follows changes.
  std::vector<int> following ABSL_GUARDED_BY(mu);
  size_t parked ABSL_GUARDED_BY(mu) = 0;
};

void Poke(int event_fd) {
  const uint64_t one = 1;
  (void)!::write(event_fd, &one, sizeof(one));
}

FollowPause& Pause() {
  static FollowPause* const pause = new FollowPause();
  return *pause;
}

}  // namespace

namespace internal {

void PauseIndexFollowingForTesting(bool paused) {
  FollowPause& pause = Pause();
  MutexLock lock(&pause.mu);
  pause.paused = paused;
  pause.changed.SignalAll();
  if (!paused) return;
  // Returns once every loop is parked: no report is read after this.
  for (int fd : pause.following) Poke(fd);
  while (pause.parked < pause.following.size()) pause.changed.Wait();
}

}  // namespace internal

struct FileIndex::Impl {
  std::string root;
  UniqueFd root_fd;
  absl::Status root_status;
  FileIndexOptions options;
  FileSearcher walker;  // for searches the index cannot answer
  dev_t root_device = 0;

  mutable internal::SharedMutex tree_mu;
  NameTree tree ABSL_GUARDED_BY(tree_mu);

  // Set by Start, before the thread; read-only after.
  std::unique_ptr<internal::ChangeWatcher> watcher;
  UniqueFd wake_fd;  // eventfd: Stop and WaitUntilCurrent wake the thread
  std::thread thread;

  mutable internal::Mutex mu;
  mutable internal::CondVar changed{&mu};
  bool started ABSL_GUARDED_BY(mu) = false;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  bool running ABSL_GUARDED_BY(mu) = false;  // the thread follows changes
  absl::Time as_of ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  absl::Status status ABSL_GUARDED_BY(mu);
  absl::Duration build_time ABSL_GUARDED_BY(mu);
  std::string watch_mode ABSL_GUARDED_BY(mu);
  bool from_snapshot ABSL_GUARDED_BY(mu) = false;
  absl::Duration snapshot_load_time ABSL_GUARDED_BY(mu);
  std::string snapshot_refused ABSL_GUARDED_BY(mu);
  mutable absl::Status snapshot_error ABSL_GUARDED_BY(mu);
  mutable uint64_t snapshots_written ABSL_GUARDED_BY(mu) = 0;
  // One snapshot written at a time (they share the temporary file).
  mutable internal::Mutex snapshot_mu;
  // inotify: directories indexed but not watched; read at each verification.
  absl::flat_hash_set<Id> unwatched ABSL_GUARDED_BY(mu);

  std::atomic<bool> ready{false};
  // Set when the tree would pass max_entries: the scan stops.
  std::atomic<bool> too_large{false};
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> refreshed{0};
  mutable std::atomic<uint64_t> searches_indexed{0};
  mutable std::atomic<uint64_t> searches_walked{0};
  std::atomic<uint64_t> overflows{0};
  std::atomic<uint64_t> rescans{0};
  std::atomic<uint64_t> verified{0};
  std::atomic<uint64_t> repairs{0};

  // Directories whose entries' attributes are to be read, each with every
  // directory below it: the index's thread reads them in slices between
  // reports (kAttributeSlice), after the build and after lost reports; and
  // new subtrees (`fresh`: their links may be new, see `linked`).
  struct AttributeWork {
    Id dir;
    bool fresh;
  };
  std::deque<AttributeWork> attribute_queue;  // the index's thread only
  absl::Time attributes_started;              // the index's thread only
  // Inodes (NameTree::Attributes::inode_hash) seen with a new link since the
  // last MarkShared: their other names are marked at the end of the batch.
  std::vector<uint32_t> linked;  // the index's thread only
  std::atomic<bool> attributes_ready{false};
  absl::Duration attributes_time ABSL_GUARDED_BY(mu);

  Impl(std::string root_path, FileIndexOptions index_options)
      : root(std::move(root_path)),
        options(std::move(index_options)),
        walker(root, options.search) {}

  // The background thread: build, then follow changes until Stop.
  void Run();
  absl::Status Build();
  // Loads the snapshot of options.snapshot_dir: true when the index then
  // serves from it (catching up next), false when there is none or it is
  // refused (snapshot_refused says why).
  bool LoadSnapshot();
  // Reads every directory again after a load: what changed while down.
  void CatchUp();
  absl::Status SaveSnapshot() const;
  void Follow();
  void FollowChanges();  // Follow's loop, until Stop or a failure
  // PauseIndexFollowingForTesting: waits here while paused.
  void ParkWhilePaused();
  // Reads the reports queued, and the directories they name again. False
  // when following has to stop (status says why).
  bool ApplyChanges(bool* overflowed);
  void Verify();

  // Attributes (NameTree::Attributes). Opens directory `dir` by its path
  // beneath the root, if it is still the one the index knows; else invalid.
  UniqueFd OpenIndexed(Id dir) const;
  // Reads the attributes of `dir`'s entries (lstat, as the walk) and keeps
  // them; its directories to `below` when given. Returns how many that were
  // known differed. `fresh`: a new subtree, whose files with other links
  // may have other names indexed already (to `linked`).
  size_t ReadAttributes(Id dir, bool fresh, std::deque<AttributeWork>* below);
  // Marks the other names of the inodes in `linked` (NameTree::MarkShared).
  void MarkLinked();
  // Works through attribute_queue for about `budget`.
  void ReadSomeAttributes(absl::Duration budget);
  // Queues the whole tree (`forget`: what is kept was missed, so unknown
  // until read: searches read it from disk meanwhile).
  void QueueAllAttributes(bool forget);
  // Reads again the attributes of entries named by reports: (directory, name).
  void ReadNamed(std::vector<std::pair<Id, std::string>>* named);

  // Directories to read again, each once.
  struct RefreshQueue {
    std::deque<Id> queue;
    absl::flat_hash_set<Id> queued;
    bool recursive = false;  // a rescan: every directory below too
    // Directories whose mode or owner changed: which of the entries below can
    // be opened or read may have changed with it, so they are read anew,
    // everything below them included.
    absl::flat_hash_set<Id> anew;
    void Add(Id dir) {
      if (queued.insert(dir).second) queue.push_back(dir);
    }
    void AddAnew(Id dir) {
      anew.insert(dir);
      Add(dir);
    }
  };
  // Reads the queued directories again and brings the index in line; true
  // if something differed.
  bool RefreshAll(RefreshQueue* queue);
  bool Refresh(Id dir, RefreshQueue* queue);
  // Refresh's steps: the directory opened by its path (an invalid fd when
  // it is gone, replaced or denied, each handled: `differed` when that
  // changed the index); what differs from the entries read; the change.
  UniqueFd OpenForRefresh(Id dir, RefreshQueue* queue, bool* differed);
  void Diff(Id dir, const Listing& listing, RefreshQueue* queue, std::vector<Id>* removed,
            std::vector<const Listed*>* added) const;
  void ApplyDiff(Id dir, const std::vector<Id>& removed, const std::vector<const Listed*>& added,
                 const std::shared_ptr<const UniqueFd>& self);

  // Builds what is below `dir` (which has no children yet), whose directory
  // is `rel` beneath `base` (`rel` empty: `base` itself).
  absl::Status ScanBelow(Id dir, std::shared_ptr<const UniqueFd> base, std::string rel);

  // Scan's steps, on any walker thread. A directory `dir` was opened as
  // `fd`: its identity, its filesystem and its watch. False when it is not
  // to be read (another filesystem under one_file_system).
  bool Enter(Id dir, int fd, const struct stat& st);
  // Adds the entries read for `dir`; the new directories to `dirs` (in the
  // order of `listed`). False when max_entries would be passed.
  bool AddChildren(Id dir, const std::vector<Listed>& listed, std::vector<Id>* dirs);
  void MarkUnreadable(Id dir);
  void Forget(Id dir);  // a directory left the tree (removal callback)

  void Fail(absl::Status why);
  absl::Status TooLarge() const {
    return absl::ResourceExhaustedError(
        absl::StrCat("the tree under ", root, " has more than ", options.max_entries,
                     " entries, the index's limit (FileIndexOptions::max_entries, "
                     "--index_max_entries): searches walk it"));
  }

  class Scan;
  class Query;
  struct Candidate;
  // The matches among a search's candidates: each one's attributes as kept
  // (KeptIsCurrent), else read from its directory, opened beneath the start
  // (`start_fd`) without following links, as the walk does; within
  // max_results and the byte budget (else `truncation` says which stopped it).
  static absl::StatusOr<std::vector<v1::FileEntry>> ReadMatches(
      const std::vector<Candidate>& candidates, const internal::SearchParams& p, int start_fd,
      v1::TruncationReason* truncation);
  // A search's candidate: an entry the index matched by name, path and type.
  struct Candidate {
    std::string path;                 // relative to the search's start
    size_t name_at;                   // where its name begins in `path`
    NameTree::Attributes attributes;  // as kept, maybe unknown
  };

  // The index's answer, or nullopt when it cannot answer (then the walk).
  std::optional<absl::StatusOr<v1::SearchResponse>> SearchIndex(
      const internal::PreparedSearch& prepared) const;
};

// One parallel scan of a subtree into the index: its walkers (the calling
// thread, and threads of the process's WalkerPool that join when free) share
// directories through a WalkScheduler as FileSearcher's walk does; each
// directory read is added to the tree under its lock.
class FileIndex::Impl::Scan : public std::enable_shared_from_this<Scan> {
 public:
  Scan(FileIndex::Impl* index, internal::WorkItem first)
      : index_(index), scheduler_(std::move(first), &stopped_) {}

  void Run(int helpers) {
    internal::WorkerPool& pool = internal::WalkerPool();
    helpers = std::min(helpers, static_cast<int>(pool.threads()));
    for (int i = 0; i < helpers; ++i) {
      if (!pool.Submit([self = shared_from_this()] { self->Help(); })) break;
    }
    Work();
    scheduler_.Close();
  }

  absl::Status error() {
    internal::MutexLock lock(&mu_);
    if (error_.ok()) return absl::OkStatus();
    return absl::Status(error_.code(), error_.message());
  }

 private:
  struct Worker {
    internal::DirReader reader;
    Listing listing;
    std::vector<Id> dirs;
    std::vector<internal::WorkItem> stack;
  };

  void Help() {
    if (!scheduler_.Join()) return;
    Work();
    scheduler_.Leave();
  }

  void Work() {
    Worker w;
    scheduler_.Drive(&w.stack, [&](internal::WorkItem& item) { Process(item, w); });
  }

  void Stop(absl::Status why) {
    if (!why.ok()) {
      internal::MutexLock lock(&mu_);
      if (error_.ok()) error_ = std::move(why);
    }
    stopped_.store(true);
    scheduler_.Wake();
  }

  void Process(internal::WorkItem& item, Worker& w) {
    std::shared_ptr<const UniqueFd> self;
    if (item.base_offset == item.rel_path.size()) {
      self = item.base;
    } else {
      const int fd = internal::OpenSubdirectoryNoFollow(item.base->get(),
                                                        item.rel_path.substr(item.base_offset));
      if (fd < 0) {
        if (IsOutOfDescriptors(-fd)) {
          Stop(internal::ErrnoToStatus(-fd, "open", item.rel_path));
        } else {
          // Denied, or gone or replaced meanwhile (its parent's report will
          // say so): nothing below it is indexed until it is read again.
          index_->MarkUnreadable(item.tag);
        }
        return;
      }
      self = fds_.Hold(fd);
    }
    struct stat st;
    if (::fstat(self->get(), &st) != 0 || !index_->Enter(item.tag, self->get(), st)) return;
    if (!ReadEntries(self->get(), &w.reader, &w.listing)) {
      index_->MarkUnreadable(item.tag);
      return;
    }
    w.dirs.clear();
    if (!index_->AddChildren(item.tag, w.listing.entries, &w.dirs)) {
      Stop(absl::OkStatus());
      return;
    }
    const bool rebase = fds_.ShouldRebase(item.rel_path.size() - item.base_offset);
    size_t next_dir = 0;
    for (const Listed& entry : w.listing.entries) {
      if (entry.type != DT_DIR) continue;
      internal::WorkItem child;
      child.rel_path = internal::JoinPath(item.rel_path, entry.name);
      child.base = rebase ? self : item.base;
      child.base_offset = rebase ? child.rel_path.size() - entry.name.size() : item.base_offset;
      child.tag = w.dirs[next_dir++];
      w.stack.push_back(std::move(child));
    }
  }

  FileIndex::Impl* const index_;
  std::atomic<bool> stopped_{false};
  internal::WalkScheduler scheduler_;  // after stopped_, which it reads
  internal::DirectoryFds fds_;
  internal::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------
// Building and following

bool FileIndex::Impl::Enter(Id dir, int fd, const struct stat& st) {
  const bool other_filesystem = options.search.one_file_system && st.st_dev != root_device;
  {
    internal::WriterMutexLock lock(&tree_mu);
    tree.SetIdentity(dir, st.st_dev, st.st_ino);
    tree.set_flags(dir, other_filesystem ? NameTree::kNotWalked : 0);
  }
  if (other_filesystem) return false;
  // Watched before it is read: a change after the read is reported.
  if (watcher != nullptr && !watcher->Watch(fd, dir)) {
    internal::MutexLock lock(&mu);
    unwatched.insert(dir);
  }
  return true;
}

bool FileIndex::Impl::AddChildren(Id dir, const std::vector<Listed>& listed,
                                  std::vector<Id>* dirs) {
  internal::WriterMutexLock lock(&tree_mu);
  if (tree.size() + listed.size() > options.max_entries) {
    too_large.store(true);
    return false;
  }
  tree.ReserveChildren(dir, listed.size());
  for (const Listed& entry : listed) {
    const Id id = tree.Add(dir, entry.name, entry.type);
    if (entry.type == DT_DIR) {
      tree.set_entry_inode(id, entry.inode);
      dirs->push_back(id);
    }
  }
  return true;
}

void FileIndex::Impl::MarkUnreadable(Id dir) {
  internal::WriterMutexLock lock(&tree_mu);
  tree.set_flags(dir, NameTree::kUnreadable);
}

void FileIndex::Impl::Forget(Id dir) {
  if (watcher != nullptr) watcher->Unwatch(dir);
  internal::MutexLock lock(&mu);
  unwatched.erase(dir);
}

absl::Status FileIndex::Impl::ScanBelow(Id dir, std::shared_ptr<const UniqueFd> base,
                                        std::string rel) {
  internal::WorkItem first;
  first.base = std::move(base);
  first.rel_path = std::move(rel);
  first.tag = dir;
  auto scan = std::make_shared<Scan>(this, std::move(first));
  const int threads = options.search.threads;
  scan->Run(threads <= 0 ? std::numeric_limits<int>::max() : threads - 1);
  if (too_large.load()) return TooLarge();
  return scan->error();
}

void FileIndex::Impl::Fail(absl::Status why) {
  ready.store(false);
  {
    internal::WriterMutexLock lock(&tree_mu);
    tree = NameTree();
  }
  internal::MutexLock lock(&mu);
  status = std::move(why);
  running = false;
  changed.SignalAll();
}

absl::Status FileIndex::Impl::Build() {
  const absl::Time start = absl::Now();
  UniqueFd self(::openat(root_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!self.valid()) return internal::ErrnoToStatus(errno, "open", root);
  absl::Status scanned =
      ScanBelow(NameTree::kRoot, std::make_shared<const UniqueFd>(std::move(self)), "");
  if (!scanned.ok()) return scanned;
  {
    internal::WriterMutexLock lock(&tree_mu);
    tree.Shrink();
  }
  internal::MutexLock lock(&mu);
  // Every directory was read after `start`: every change before it is in.
  as_of = start;
  build_time = absl::Now() - start;
  ready.store(true);
  changed.SignalAll();
  return absl::OkStatus();
}

bool FileIndex::Impl::LoadSnapshot() {
  const absl::Time start = absl::Now();
  const std::string path = absl::StrCat(options.snapshot_dir, "/", internal::kSnapshotName);
  const auto refuse = [&](const absl::Status& why) {
    internal::MutexLock lock(&mu);
    snapshot_refused = why.ToString();
    return false;
  };
  // Each entry takes at most 3 bytes, its name and a directory's 28.
  const uint64_t max_bytes = uint64_t{64} + uint64_t{options.max_entries} * (3 + 255 + 28);
  absl::StatusOr<std::string> bytes = internal::ReadWholeFile(path, max_bytes);
  if (!bytes.ok()) return absl::IsNotFound(bytes.status()) ? false : refuse(bytes.status());
  NameTree loaded;
  absl::StatusOr<internal::SnapshotInfo> info = internal::DecodeSnapshot(*bytes, &loaded);
  if (!info.ok()) return refuse(info.status());
  struct stat st;
  if (::fstat(root_fd.get(), &st) != 0) return refuse(internal::ErrnoToStatus(errno, "stat", root));
  if (info->root_device != st.st_dev || info->root_inode != st.st_ino) {
    return refuse(
        absl::FailedPreconditionError(absl::StrCat(path, " is of another directory than ", root)));
  }
  if (info->one_file_system != options.search.one_file_system) {
    return refuse(absl::FailedPreconditionError(
        absl::StrCat(path, " was made with one_file_system ", info->one_file_system ? "on" : "off",
                     ", the index has it ", options.search.one_file_system ? "on" : "off")));
  }
  if (absl::Now() - info->as_of > options.max_snapshot_age) {
    return refuse(absl::FailedPreconditionError(
        absl::StrCat(path, " is older than ", absl::FormatDuration(options.max_snapshot_age))));
  }
  if (info->entries + 1 > options.max_entries) {
    return refuse(absl::FailedPreconditionError(
        absl::StrCat(path, " holds more entries than --index_max_entries")));
  }
  {
    internal::WriterMutexLock lock(&tree_mu);
    tree = std::move(loaded);
  }
  internal::MutexLock lock(&mu);
  from_snapshot = true;
  snapshot_load_time = absl::Now() - start;
  as_of = info->as_of;  // what changed after it, the catch-up finds
  ready.store(true);
  changed.SignalAll();
  return true;
}

void FileIndex::Impl::CatchUp() {
  const absl::Time start = absl::Now();
  RefreshQueue queue;
  queue.recursive = true;
  queue.Add(NameTree::kRoot);
  RefreshAll(&queue);
  if (too_large.load()) return;
  internal::MutexLock lock(&mu);
  as_of = std::max(as_of, start);
  build_time = absl::Now() - start;
  changed.SignalAll();
}

absl::Status FileIndex::Impl::SaveSnapshot() const {
  if (options.snapshot_dir.empty()) {
    return absl::FailedPreconditionError("the index has no snapshot directory");
  }
  if (!ready.load()) return absl::UnavailableError("the index is not built yet");
  internal::MutexLock saving(&snapshot_mu);
  internal::SnapshotInfo info;
  info.root_device = root_device;
  info.one_file_system = options.search.one_file_system;
  {
    internal::MutexLock lock(&mu);
    info.as_of = as_of;  // read first: the tree read next is at least as new
  }
  std::string bytes;
  {
    internal::ReaderMutexLock lock(&tree_mu);
    info.root_inode = tree.identity(NameTree::kRoot).second;
    info.root_device = tree.identity(NameTree::kRoot).first;
    bytes = internal::EncodeSnapshot(tree, info);
  }
  absl::Status written =
      internal::WriteFileAtomically(options.snapshot_dir, internal::kSnapshotName, bytes);
  internal::MutexLock lock(&mu);
  snapshot_error = written;
  if (written.ok()) ++snapshots_written;
  return written;
}

void FileIndex::Impl::Run() {
  if (!options.snapshot_dir.empty()) {
    internal::RemoveLeftovers(options.snapshot_dir, internal::kSnapshotName);
  }
  const bool loaded = !options.snapshot_dir.empty() && LoadSnapshot();
  if (loaded && options.follow) {
    CatchUp();
  } else if (!loaded) {
    if (absl::Status built = Build(); !built.ok()) {
      Fail(std::move(built));
      return;
    }
  }
  if (too_large.load()) {
    Fail(TooLarge());
    return;
  }
  // A snapshot just loaded and not caught up says nothing newer.
  if (!options.snapshot_dir.empty() && (options.follow || !loaded)) {
    SaveSnapshot().IgnoreError();  // errors: in stats
  }
  if (!options.follow) {
    internal::MutexLock lock(&mu);
    running = false;
    changed.SignalAll();
    return;
  }
  attributes_started = absl::Now();
  QueueAllAttributes(/*forget=*/false);
  Follow();
  if (!options.snapshot_dir.empty() && ready.load()) SaveSnapshot().IgnoreError();
}

void FileIndex::Impl::ParkWhilePaused() {
  FollowPause& pause = Pause();
  internal::MutexLock lock(&pause.mu);
  if (!pause.paused) return;
  ++pause.parked;
  pause.changed.SignalAll();
  while (pause.paused) {
    {
      internal::MutexLock state(&mu);
      if (stopping) break;
    }
    pause.changed.WaitUntil(absl::Now() + absl::Milliseconds(5));  // Stop does not signal here
  }
  --pause.parked;
}

void FileIndex::Impl::Follow() {
  FollowPause& pause = Pause();
  {
    internal::MutexLock lock(&pause.mu);
    pause.following.push_back(wake_fd.get());
  }
  FollowChanges();
  {
    internal::MutexLock lock(&pause.mu);
    pause.following.erase(std::find(pause.following.begin(), pause.following.end(), wake_fd.get()));
    pause.changed.SignalAll();
  }
  internal::MutexLock lock(&mu);
  running = false;
  changed.SignalAll();
}

void FileIndex::Impl::FollowChanges() {
  absl::Time next_verify = options.verify_interval > absl::ZeroDuration()
                               ? absl::Now() + options.verify_interval
                               : absl::InfiniteFuture();
  const bool snapshots =
      !options.snapshot_dir.empty() && options.snapshot_interval > absl::ZeroDuration();
  absl::Time next_snapshot =
      snapshots ? absl::Now() + options.snapshot_interval : absl::InfiniteFuture();
  for (;;) {
    {
      internal::MutexLock lock(&mu);
      if (stopping) break;
    }
    ParkWhilePaused();
    pollfd fds[2] = {{watcher->fd(), POLLIN, 0}, {wake_fd.get(), POLLIN, 0}};
    // Woken by a report, a poke, the next verification or the heartbeat
    // that moves as_of on while nothing changes.
    const absl::Duration wait =
        attribute_queue.empty()
            ? std::min({next_verify - absl::Now(), next_snapshot - absl::Now(), kHeartbeat})
            : absl::ZeroDuration();
    const int timeout = static_cast<int>(std::max<int64_t>(absl::ToInt64Milliseconds(wait) + 1, 0));
    if (::poll(fds, 2, timeout) < 0 && errno != EINTR) {
      Fail(internal::ErrnoToStatus(errno, "poll", "the change reports"));
      return;
    }
    // Every change made before `now` is queued by now: once the queue is
    // read and applied, the index is current as of `now`.
    const absl::Time now = absl::Now();
    uint64_t pokes;
    while (::read(wake_fd.get(), &pokes, sizeof(pokes)) > 0) {
    }
    bool overflowed = false;
    if (!ApplyChanges(&overflowed)) return;
    if (now >= next_verify) {
      Verify();
      next_verify = absl::Now() + options.verify_interval;
    }
    if (now >= next_snapshot) {
      SaveSnapshot().IgnoreError();  // errors: in stats
      next_snapshot = absl::Now() + options.snapshot_interval;
    }
    if (!attribute_queue.empty() || !attributes_ready.load()) ReadSomeAttributes(kAttributeSlice);
    internal::MutexLock lock(&mu);
    as_of = std::max(as_of, now);
    changed.SignalAll();
  }
}

bool FileIndex::Impl::ApplyChanges(bool* overflowed) {
  std::vector<internal::Change> changes;
  if (absl::Status read = watcher->Read(&changes); !read.ok()) {
    Fail(std::move(read));
    return false;
  }
  events.fetch_add(changes.size(), std::memory_order_relaxed);
  RefreshQueue queue;
  std::vector<std::pair<Id, std::string>> named;  // entries whose attributes to read again
  {
    internal::ReaderMutexLock lock(&tree_mu);
    for (internal::Change& change : changes) {
      if (change.overflow) {
        *overflowed = true;
        continue;
      }
      const Id dir = change.by_identity ? tree.FindDirectory(change.device, change.inode)
                                        : static_cast<Id>(change.tag);
      if (dir == NameTree::kNone || !tree.valid(dir) || !tree.is_directory(dir)) continue;
      // A named entry's attributes are read again (made, renamed here,
      // written, chmod: a name reused keeps its node when the type stays).
      if (!change.name.empty()) named.emplace_back(dir, change.name);
      if (change.attributes) {
        // A directory's mode and owner decide what below it can be read.
        if (change.name.empty()) {
          queue.AddAnew(dir);
        } else if (change.is_directory) {
          const Id child = tree.Child(dir, change.name);
          if (child != NameTree::kNone && tree.is_directory(child)) queue.AddAnew(child);
        }
        continue;
      }
      queue.Add(dir);
    }
  }
  if (*overflowed) {
    overflows.fetch_add(1, std::memory_order_relaxed);
    rescans.fetch_add(1, std::memory_order_relaxed);
    queue = RefreshQueue();
    queue.recursive = true;
    queue.Add(NameTree::kRoot);
    named.clear();
  }
  RefreshAll(&queue);
  if (too_large.load()) {
    Fail(TooLarge());
    return false;
  }
  if (*overflowed) {
    QueueAllAttributes(/*forget=*/true);  // changes to them were lost too
  } else {
    ReadNamed(&named);
  }
  MarkLinked();
  return true;
}

void FileIndex::Impl::MarkLinked() {
  if (linked.empty()) return;
  // An inode's new link is reported under the new name only (the kernel
  // tells the old names' directories nothing): every name of it is marked.
  std::sort(linked.begin(), linked.end());
  linked.erase(std::unique(linked.begin(), linked.end()), linked.end());
  internal::WriterMutexLock lock(&tree_mu);
  tree.MarkShared(linked);
  linked.clear();
}

bool FileIndex::Impl::RefreshAll(RefreshQueue* queue) {
  bool differed = false;
  while (!queue->queue.empty()) {
    const Id dir = queue->queue.front();
    queue->queue.pop_front();
    queue->queued.erase(dir);
    if (Refresh(dir, queue)) differed = true;
    if (too_large.load()) break;
  }
  return differed;
}

UniqueFd FileIndex::Impl::OpenForRefresh(Id dir, RefreshQueue* queue, bool* differed) {
  std::string path;
  Id parent;
  {
    internal::ReaderMutexLock lock(&tree_mu);
    if (!tree.valid(dir) || !tree.is_directory(dir)) return UniqueFd();
    tree.AppendPath(dir, NameTree::kRoot, &path);
    parent = tree.parent(dir);
  }
  int fd;
  int open_error = 0;
  if (dir == NameTree::kRoot) {
    fd = ::openat(root_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) open_error = errno;
  } else {
    fd = internal::OpenSubdirectoryNoFollow(root_fd.get(), path);
    if (fd < 0) open_error = -fd;
  }
  if (fd >= 0) return UniqueFd(fd);
  if (IsOutOfDescriptors(open_error)) return UniqueFd();  // read again at the next report
  if (dir != NameTree::kRoot &&
      (open_error == ENOENT || open_error == ENOTDIR || open_error == ELOOP)) {
    queue->Add(parent);  // gone or replaced: its parent's entries say how
    return UniqueFd();
  }
  internal::WriterMutexLock lock(&tree_mu);
  *differed = !tree.children(dir).empty();
  tree.RemoveChildren(dir, [this](Id gone) { Forget(gone); });
  tree.set_flags(dir, NameTree::kUnreadable);
  return UniqueFd();
}

void FileIndex::Impl::Diff(Id dir, const Listing& listing, RefreshQueue* queue,
                           std::vector<Id>* removed, std::vector<const Listed*>* added) const {
  internal::ReaderMutexLock lock(&tree_mu);
  absl::flat_hash_map<std::string_view, Id> known;
  known.reserve(tree.children(dir).size());
  for (Id child : tree.children(dir)) known.emplace(tree.name(child), child);
  for (const Listed& entry : listing.entries) {
    auto it = known.find(entry.name);
    if (it != known.end()) {
      const Id child = it->second;
      known.erase(it);
      if (tree.type(child) == entry.type &&
          (entry.type != DT_DIR || tree.entry_inode(child) == entry.inode)) {
        if (queue->recursive && entry.type == DT_DIR) queue->Add(child);
        continue;
      }
      removed->push_back(child);
    }
    added->push_back(&entry);
  }
  for (const auto& [name, child] : known) removed->push_back(child);
}

void FileIndex::Impl::ApplyDiff(Id dir, const std::vector<Id>& removed,
                                const std::vector<const Listed*>& added,
                                const std::shared_ptr<const UniqueFd>& self) {
  std::vector<std::pair<Id, const Listed*>> new_dirs;
  // The new entries' attributes, read before they are added.
  std::vector<NameTree::Attributes> read(added.size());
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string name(added[i]->name);
    struct stat st;
    if (internal::StatAt(self->get(), name.c_str(), &st) == 0 &&
        IFTODT(st.st_mode) == added[i]->type) {
      read[i] = NameTree::Attributes::Of(st);
      if (read[i].shared()) linked.push_back(read[i].inode_hash);
    }
  }
  {
    internal::WriterMutexLock lock(&tree_mu);
    for (Id child : removed) tree.Remove(child, [this](Id gone) { Forget(gone); });
    if (tree.size() + added.size() > options.max_entries) {
      too_large.store(true);
      return;
    }
    for (size_t i = 0; i < added.size(); ++i) {
      const Listed* entry = added[i];
      const Id id = tree.Add(dir, entry->name, entry->type);
      tree.set_attributes(id, read[i]);
      if (entry->type == DT_DIR) {
        tree.set_entry_inode(id, entry->inode);
        new_dirs.emplace_back(id, entry);
      }
    }
  }
  // New directories: everything below them is new too.
  for (const auto& [id, entry] : new_dirs) {
    if (absl::Status scanned = ScanBelow(id, self, std::string(entry->name)); !scanned.ok()) {
      return;
    }
    attribute_queue.push_back(AttributeWork{id, /*fresh=*/true});
    attributes_ready.store(false);
  }
}

bool FileIndex::Impl::Refresh(Id dir, RefreshQueue* queue) {
  refreshed.fetch_add(1, std::memory_order_relaxed);
  bool differed = false;
  UniqueFd opened = OpenForRefresh(dir, queue, &differed);
  if (!opened.valid()) return differed;
  const int fd = opened.get();
  auto self = std::make_shared<const UniqueFd>(std::move(opened));
  struct stat st;
  if (::fstat(fd, &st) != 0) return false;
  std::pair<uint64_t, uint64_t> identity;
  {
    internal::ReaderMutexLock lock(&tree_mu);
    identity = tree.identity(dir);
  }
  if (queue->anew.contains(dir) ||
      (identity.second != 0 && (identity.first != st.st_dev || identity.second != st.st_ino))) {
    // Its mode or owner changed, or another directory is at its path now
    // (replaced meanwhile, or its filesystem mounted anew since a snapshot):
    // read it, and everything below it, as new.
    internal::WriterMutexLock lock(&tree_mu);
    differed = differed || !tree.children(dir).empty();
    tree.RemoveChildren(dir, [this](Id gone) { Forget(gone); });
  }
  if (dir != NameTree::kRoot) {
    // Its time and size change with its entries: kept as the walk reads them
    // (fstat of the directory opened without following is lstat of its name).
    internal::WriterMutexLock lock(&tree_mu);
    tree.set_attributes(dir, NameTree::Attributes::Of(st));
  }
  if (!Enter(dir, fd, st)) {
    internal::WriterMutexLock lock(&tree_mu);
    tree.RemoveChildren(dir, [this](Id gone) { Forget(gone); });
    return false;
  }
  internal::DirReader reader;
  Listing listing;
  if (!ReadEntries(fd, &reader, &listing)) {
    MarkUnreadable(dir);
    return differed;
  }
  // The differences: entries gone (or of another kind now) and new ones.
  std::vector<Id> removed;
  std::vector<const Listed*> added;
  Diff(dir, listing, queue, &removed, &added);
  if (removed.empty() && added.empty()) return differed;
  ApplyDiff(dir, removed, added, self);
  return true;
}

void FileIndex::Impl::Verify() {
  RefreshQueue queue;
  {
    internal::MutexLock lock(&mu);
    for (Id dir : unwatched) queue.Add(dir);
  }
  {
    internal::ReaderMutexLock lock(&tree_mu);
    std::mt19937_64 random(static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())));
    const size_t slots = tree.capacity();
    for (size_t tries = 0;
         queue.queue.size() < options.verify_sample && tries < 4 * options.verify_sample; ++tries) {
      const Id id = static_cast<Id>(random() % slots);
      if (tree.valid(id) && tree.is_directory(id)) queue.Add(id);
    }
  }
  verified.fetch_add(queue.queue.size(), std::memory_order_relaxed);
  // Each directory read again whose entries differed is one repair, and so
  // is each entry whose attributes differed.
  while (!queue.queue.empty()) {
    const Id dir = queue.queue.front();
    queue.queue.pop_front();
    queue.queued.erase(dir);
    if (Refresh(dir, &queue)) repairs.fetch_add(1, std::memory_order_relaxed);
    repairs.fetch_add(ReadAttributes(dir, /*fresh=*/true, nullptr), std::memory_order_relaxed);
  }
}

UniqueFd FileIndex::Impl::OpenIndexed(Id dir) const {
  std::string path;
  std::pair<uint64_t, uint64_t> identity;
  {
    internal::ReaderMutexLock lock(&tree_mu);
    if (!tree.valid(dir) || !tree.is_directory(dir) || tree.flags(dir) != 0) return UniqueFd();
    tree.AppendPath(dir, NameTree::kRoot, &path);
    identity = tree.identity(dir);
  }
  UniqueFd fd;
  if (dir == NameTree::kRoot) {
    fd.Reset(::openat(root_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  } else {
    const int opened = internal::OpenSubdirectoryNoFollow(root_fd.get(), path);
    fd.Reset(opened < 0 ? -1 : opened);
  }
  struct stat st;
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || identity.first != st.st_dev ||
      identity.second != st.st_ino) {
    return UniqueFd();  // gone or replaced: its reports say what to read
  }
  return fd;
}

size_t FileIndex::Impl::ReadAttributes(Id dir, bool fresh, std::deque<AttributeWork>* below) {
  const UniqueFd fd = OpenIndexed(dir);
  if (!fd.valid()) return 0;
  std::vector<std::pair<Id, NameTree::Attributes>> read;
  {
    // Only this thread changes the tree: nothing changes between this lock
    // and the writer's below.
    internal::ReaderMutexLock lock(&tree_mu);
    read.reserve(tree.children(dir).size());
    char name[NAME_MAX + 1];
    for (Id child : tree.children(dir)) {
      const std::string_view n = tree.name(child);
      std::memcpy(name, n.data(), n.size());
      name[n.size()] = '\0';
      struct stat st;
      // Gone, or of another type now: its report will say.
      if (internal::StatAt(fd.get(), name, &st) != 0 || IFTODT(st.st_mode) != tree.type(child)) {
        continue;
      }
      read.emplace_back(child, NameTree::Attributes::Of(st));
      if (below != nullptr && tree.is_directory(child)) below->push_back({child, fresh});
    }
  }
  size_t differed = 0;
  internal::WriterMutexLock lock(&tree_mu);
  for (const auto& [id, attributes] : read) {
    const NameTree::Attributes& kept = tree.attributes(id);
    if (kept.known() && kept != attributes) ++differed;
    // A link made in a new directory: its first report was the directory's.
    if (fresh && attributes.shared() && !kept.shared()) linked.push_back(attributes.inode_hash);
    tree.set_attributes(id, attributes);
  }
  return differed;
}

void FileIndex::Impl::ReadSomeAttributes(absl::Duration budget) {
  const absl::Time until = absl::Now() + budget;
  while (!attribute_queue.empty() && absl::Now() < until) {
    const AttributeWork work = attribute_queue.front();
    attribute_queue.pop_front();
    ReadAttributes(work.dir, work.fresh, &attribute_queue);
  }
  MarkLinked();
  // Ready once the queue is empty, whichever call empties it or finds it so
  // (FollowChanges calls while it is not ready).
  if (!attribute_queue.empty()) return;
  if (!attributes_ready.exchange(true)) {
    internal::MutexLock lock(&mu);
    if (attributes_time == absl::ZeroDuration()) attributes_time = absl::Now() - attributes_started;
  }
}

void FileIndex::Impl::QueueAllAttributes(bool forget) {
  if (forget) {
    internal::WriterMutexLock lock(&tree_mu);
    tree.ForgetAttributes();
  }
  attribute_queue.clear();
  // Every name is read: an inode's names are all found shared by the reading.
  attribute_queue.push_back(AttributeWork{NameTree::kRoot, /*fresh=*/false});
  attributes_ready.store(false);
}

void FileIndex::Impl::ReadNamed(std::vector<std::pair<Id, std::string>>* named) {
  std::sort(named->begin(), named->end());
  named->erase(std::unique(named->begin(), named->end()), named->end());
  for (size_t at = 0; at < named->size();) {
    const Id dir = (*named)[at].first;
    size_t end = at;
    while (end < named->size() && (*named)[end].first == dir) ++end;
    if (const UniqueFd fd = OpenIndexed(dir); fd.valid()) {
      std::vector<std::pair<Id, NameTree::Attributes>> read;
      {
        internal::ReaderMutexLock lock(&tree_mu);
        absl::flat_hash_map<std::string_view, Id> by_name;
        if (end - at > 8) {  // else a look through the children each
          for (Id child : tree.children(dir)) by_name.emplace(tree.name(child), child);
        }
        for (size_t i = at; i < end; ++i) {
          const std::string& name = (*named)[i].second;
          Id child;
          if (by_name.empty()) {
            child = tree.Child(dir, name);
          } else {
            auto it = by_name.find(name);
            child = it == by_name.end() ? NameTree::kNone : it->second;
          }
          struct stat st;
          if (child == NameTree::kNone || internal::StatAt(fd.get(), name.c_str(), &st) != 0 ||
              IFTODT(st.st_mode) != tree.type(child)) {
            continue;  // gone or replaced: its refresh saw to it
          }
          read.emplace_back(child, NameTree::Attributes::Of(st));
        }
      }
      internal::WriterMutexLock lock(&tree_mu);
      for (const auto& [id, attributes] : read) {
        if (attributes.shared() && !tree.attributes(id).shared()) {
          linked.push_back(attributes.inode_hash);
        }
        tree.set_attributes(id, attributes);
      }
    }
    at = end;
  }
}

// ---------------------------------------------------------------------------
// Searching

// What the index keeps of an entry answers for it unless a search has to
// read the disk: a symlink's target is not kept, and an entry with other hard
// links may have changed through one of them, unreported under this name.
namespace {
bool KeptIsCurrent(const NameTree::Attributes& a) {
  return a.known() && !a.shared() && !S_ISLNK(a.st_mode());
}
}  // namespace

// One search's look through the index: the calling thread and threads of
// the process's WalkerPool that join (as FileSearcher's walk does) share the
// directories through a WalkScheduler; each keeps its own candidates and
// counts, added up as it leaves. The caller holds the tree's reader lock for
// the whole of Run: helpers read the tree under it, and Run returns only when
// every helper that joined has left (a helper that comes later touches
// nothing).
class FileIndex::Impl::Query : public std::enable_shared_from_this<Query> {
 public:
  Query(const internal::SearchParams& params, uint64_t max_sized_candidates)
      : params_(params), max_sized_candidates_(max_sized_candidates) {
    // Per entry, one load instead of a call (the loop below runs for every
    // entry of the tree).
    for (int t = 0; t < 256; ++t) {
      const auto dtype = static_cast<uint8_t>(t);
      type_wanted_[t] =
          internal::TypeWanted(params.type, dtype) && (!params.size_filter || dtype == DT_REG);
    }
  }

  void Run(const NameTree& searched, Id start, int threads) {
    tree_ = &searched;
    internal::WorkItem first;
    first.tag = start;
    scheduler_.emplace(std::move(first), &stopped_);
    internal::WorkerPool& pool = internal::WalkerPool();
    const int helpers = std::min(threads <= 0 ? std::numeric_limits<int>::max() : threads - 1,
                                 static_cast<int>(pool.threads()));
    for (int i = 0; i < helpers; ++i) {
      if (!pool.Submit([self = shared_from_this()] { self->Help(); })) break;
    }
    Work();
    scheduler_->Close();
  }

  // After Run: the results (no helper is left by then).
  bool cannot_answer() const { return cannot_answer_.load(); }
  v1::TruncationReason truncation() const {
    return static_cast<v1::TruncationReason>(truncation_.load());
  }
  uint64_t scanned() const { return scanned_.load(); }
  uint64_t skipped() const { return skipped_.load(); }
  uint64_t other_filesystem() const { return other_filesystem_.load(); }
  std::vector<Candidate>& candidates() {
    internal::MutexLock lock(&mu_);  // every worker is done: never contended
    return candidates_;
  }

 private:
  struct Worker {
    std::vector<internal::WorkItem> stack;
    std::vector<Candidate> candidates;
    std::string path;
    uint64_t scanned = 0, skipped = 0, other_filesystem = 0;
  };

  void Help() {
    if (!scheduler_->Join()) return;
    Work();
    scheduler_->Leave();
  }

  void Stop(v1::TruncationReason reason) {
    int none = v1::TRUNCATION_REASON_UNSPECIFIED;
    truncation_.compare_exchange_strong(none, reason);
    stopped_.store(true);
    scheduler_->Wake();
  }

  void Work() {
    Worker w;
    scheduler_->Drive(&w.stack, [&](const internal::WorkItem& item) { Process(item, w); });
    scanned_ += w.scanned;
    skipped_ += w.skipped;
    other_filesystem_ += w.other_filesystem;
    internal::MutexLock lock(&mu_);
    candidates_.insert(candidates_.end(), std::make_move_iterator(w.candidates.begin()),
                       std::make_move_iterator(w.candidates.end()));
  }

  // A match by name, path and type: a candidate unless its size kept is out
  // of the bound. False when the search stops here. Out of Process's loop,
  // which runs for every entry: inlined there, a full scan of the 2-million
  // entry tree took 11-15 ms against 8-14 ms before the attributes (three
  // runs each, filemesh_index_bench); out of it, 8-12 ms.
  ABSL_ATTRIBUTE_NOINLINE bool Take(Id child, std::string_view name, size_t prefix, Worker& w) {
    const internal::SearchParams& p = params_;
    // A size kept is as current as the names (a size bound is on regular
    // files only, so the type agrees), unless other hard links may have
    // changed it.
    const NameTree::Attributes& a = tree_->attributes(child);
    const bool sized = a.known() && !a.shared();
    if (p.size_filter && sized && (a.size < p.min_size || a.size > p.max_size)) return true;
    if (!p.size_filter || sized) {
      // Certainly a match: one past max_results is where the walk stops too.
      if (found_.fetch_add(1) >= p.max_results) {
        Stop(v1::TRUNCATION_REASON_MAX_RESULTS);
        return false;
      }
    } else if (unsized_.fetch_add(1) >= max_sized_candidates_) {
      cannot_answer_.store(true);  // sizes to read: the walk holds no list of them
      Stop(v1::TRUNCATION_REASON_UNSPECIFIED);
      return false;
    }
    w.path.resize(prefix);
    w.path.append(name);
    w.candidates.push_back(Candidate{w.path, prefix, a});
    return true;
  }

  // The entries of one directory, as the walk reads them.
  void Process(const internal::WorkItem& item, Worker& w) {
    const internal::SearchParams& p = params_;
    const NameTree& names = *tree_;
    w.path.assign(item.rel_path);
    if (!w.path.empty()) w.path += '/';
    const size_t prefix = w.path.size();
    const uint32_t depth = item.depth + 1;
    for (Id child : names.children(item.tag)) {
      if (++w.scanned % kDeadlineCheckEvery == 0 &&
          (stopped_.load(std::memory_order_relaxed) ||
           (p.deadline != absl::InfiniteFuture() && internal::SearchNow() >= p.deadline))) {
        Stop(v1::TRUNCATION_REASON_DEADLINE);  // or stopped already, for another reason
        return;
      }
      const std::string_view name = names.name(child);
      if (!p.include_hidden && name.front() == '.') continue;
      const uint8_t type = names.type(child);
      bool matched = false;
      if (depth <= p.max_depth && type_wanted_[type]) {
        if (p.matcher->matches_path()) {
          w.path.resize(prefix);
          w.path.append(name);
          matched = p.matcher->Match(w.path);
        } else {
          matched = p.matcher->Match(name);
        }
      }
      if (matched && !Take(child, name, prefix, w)) return;
      if (type != DT_DIR || depth >= p.max_depth) continue;
      const uint8_t flags = names.flags(child);
      if ((flags & NameTree::kUnreadable) != 0) {
        ++w.skipped;
      } else if ((flags & NameTree::kNotWalked) != 0 ||
                 (p.one_file_system && names.identity(child).second != 0 &&
                  names.identity(child).first != p.start_device)) {
        if (!p.one_file_system) {  // left out, but wanted: the walk answers
          cannot_answer_.store(true);
          Stop(v1::TRUNCATION_REASON_UNSPECIFIED);
          return;
        }
        ++w.other_filesystem;
      } else {
        internal::WorkItem next;
        next.rel_path.assign(w.path, 0, prefix);
        next.rel_path.append(name);
        next.depth = depth;
        next.tag = child;
        w.stack.push_back(std::move(next));
      }
    }
  }

  const internal::SearchParams& params_;
  const uint64_t max_sized_candidates_;
  bool type_wanted_[256];  // by DT_* type: a candidate, size bound included
  const NameTree* tree_ = nullptr;
  std::atomic<bool> stopped_{false};
  std::optional<internal::WalkScheduler> scheduler_;  // after stopped_, which it reads
  std::atomic<int> truncation_{v1::TRUNCATION_REASON_UNSPECIFIED};
  std::atomic<uint64_t> found_{0};    // candidates that are matches for certain
  std::atomic<uint64_t> unsized_{0};  // candidates whose size is to be read
  std::atomic<uint64_t> scanned_{0}, skipped_{0}, other_filesystem_{0};
  std::atomic<bool> cannot_answer_{false};
  internal::Mutex mu_;
  std::vector<Candidate> candidates_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::vector<v1::FileEntry>> FileIndex::Impl::ReadMatches(
    const std::vector<Candidate>& candidates, const internal::SearchParams& p, int start_fd,
    v1::TruncationReason* truncation) {
  std::vector<v1::FileEntry> matches;
  uint64_t bytes = 0;
  std::string open_path;
  UniqueFd open_dir;
  bool opened = false;  // open_dir is open_path's (or it could not be opened)
  for (size_t i = 0; i < candidates.size() && *truncation != v1::TRUNCATION_REASON_MAX_BYTES; ++i) {
    const Candidate& c = candidates[i];
    const std::string name = c.path.substr(c.name_at);
    struct stat st;
    int dir_fd = -1;
    if (KeptIsCurrent(c.attributes)) {
      st = c.attributes.ToStat();
    } else {
      const std::string_view dir_path(c.path.data(), c.name_at == 0 ? 0 : c.name_at - 1);
      if (!opened || dir_path != open_path) {
        open_path.assign(dir_path);
        opened = true;
        if (open_path.empty()) {
          open_dir.Reset(::fcntl(start_fd, F_DUPFD_CLOEXEC, 0));
        } else {
          const int fd = internal::OpenSubdirectoryNoFollow(start_fd, open_path);
          if (IsOutOfDescriptors(-fd)) {
            return internal::ErrnoToStatus(-fd, "open", internal::JoinPath(p.prefix, open_path));
          }
          open_dir.Reset(fd < 0 ? -1 : fd);
        }
      }
      if (!open_dir.valid()) continue;  // gone meanwhile
      dir_fd = open_dir.get();
      if (internal::StatAt(dir_fd, name.c_str(), &st) != 0) continue;  // gone meanwhile
    }
    if (p.size_filter && (static_cast<uint64_t>(st.st_size) < p.min_size ||
                          static_cast<uint64_t>(st.st_size) > p.max_size)) {
      continue;
    }
    if (matches.size() >= p.max_results) {
      *truncation = v1::TRUNCATION_REASON_MAX_RESULTS;
      break;
    }
    v1::FileEntry& entry = matches.emplace_back();
    const std::string match_path = p.prefix.empty() ? c.path : internal::JoinPath(p.prefix, c.path);
    internal::FillEntry(dir_fd, match_path, name, st, p.redaction, &entry);
    const uint64_t entry_bytes = internal::RepeatedFieldBytes(entry);
    if (bytes + entry_bytes > p.max_bytes) {
      matches.pop_back();
      *truncation = v1::TRUNCATION_REASON_MAX_BYTES;
      break;
    }
    bytes += entry_bytes;
  }
  return matches;
}

std::optional<absl::StatusOr<v1::SearchResponse>> FileIndex::Impl::SearchIndex(
    const internal::PreparedSearch& prepared) const {
  const internal::SearchParams& p = prepared.params;
  struct stat start_stat;
  if (::fstat(prepared.start.get(), &start_stat) != 0) return std::nullopt;
  absl::Time index_as_of;
  {
    internal::MutexLock lock(&mu);
    index_as_of = as_of;
  }

  // The candidates, under the tree's lock: every entry the walk would have
  // matched by name, path and type, with its path below the start.
  auto query = std::make_shared<Query>(p, options.max_sized_candidates);
  {
    internal::ReaderMutexLock lock(&tree_mu);
    if (!ready.load()) return std::nullopt;
    const Id start = tree.FindDirectory(start_stat.st_dev, start_stat.st_ino);
    if (start == NameTree::kNone || tree.flags(start) != 0) return std::nullopt;
    query->Run(tree, start, options.search.threads);
  }
  if (query->cannot_answer()) return std::nullopt;
  v1::TruncationReason truncation = query->truncation();
  absl::StatusOr<std::vector<v1::FileEntry>> read =
      ReadMatches(query->candidates(), p, prepared.start.get(), &truncation);
  if (!read.ok()) return absl::StatusOr<v1::SearchResponse>(read.status());
  std::vector<v1::FileEntry>& matches = *read;
  v1::SearchResponse response;
  std::sort(matches.begin(), matches.end(), [](const v1::FileEntry& a, const v1::FileEntry& b) {
    return ExactPath(a) < ExactPath(b);
  });
  response.mutable_matches()->Reserve(static_cast<int>(matches.size()));
  for (v1::FileEntry& e : matches) response.add_matches()->Swap(&e);
  response.set_truncated(truncation != v1::TRUNCATION_REASON_UNSPECIFIED);
  response.set_truncation_reason(truncation);
  response.set_scanned_entries(query->scanned());
  response.set_skipped_directories(query->skipped());
  response.set_other_filesystem_directories(query->other_filesystem());
  SetTimestamp(index_as_of, response.mutable_index_as_of());
  return absl::StatusOr<v1::SearchResponse>(std::move(response));
}

// ---------------------------------------------------------------------------
// FileIndex

FileIndex::FileIndex(std::string root, FileIndexOptions options)
    : impl_(std::make_unique<Impl>(std::move(root), std::move(options))) {
  impl_->root_fd.Reset(::open(impl_->root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat st;
  if (!impl_->root_fd.valid() || ::fstat(impl_->root_fd.get(), &st) != 0) {
    impl_->root_status = internal::ErrnoToStatus(errno, "open root", impl_->root);
    return;
  }
  impl_->root_device = st.st_dev;
  internal::WriterMutexLock lock(&impl_->tree_mu);
  impl_->tree.SetIdentity(NameTree::kRoot, st.st_dev, st.st_ino);
}

FileIndex::~FileIndex() { Stop(); }

absl::Status FileIndex::Start() {
  if (!impl_->root_status.ok()) return impl_->root_status;
  {
    internal::MutexLock lock(&impl_->mu);
    if (impl_->started) return absl::FailedPreconditionError("the index was started before");
    impl_->started = true;
  }
  absl::StatusOr<std::unique_ptr<internal::ChangeWatcher>> watcher =
      absl::UnavailableError("no watcher");
  if (!impl_->options.follow) {
    watcher = std::unique_ptr<internal::ChangeWatcher>();  // none: nothing is followed
  } else if (impl_->options.watch != IndexWatch::kInotify) {
    watcher = internal::NewFanotifyWatcher(impl_->root_fd.get());
  }
  if (!watcher.ok() && impl_->options.watch != IndexWatch::kFanotify) {
    watcher = internal::NewInotifyWatcher(impl_->options.max_watches);
  }
  if (!watcher.ok()) {
    internal::MutexLock lock(&impl_->mu);
    impl_->status = watcher.status();
    return watcher.status();
  }
  impl_->watcher = *std::move(watcher);
  impl_->wake_fd.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl_->wake_fd.valid()) return internal::ErrnoToStatus(errno, "eventfd", "");
  {
    internal::MutexLock lock(&impl_->mu);
    impl_->running = true;
    impl_->watch_mode = impl_->watcher != nullptr ? impl_->watcher->mode() : "none";
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
  return absl::OkStatus();
}

void FileIndex::Stop() {
  {
    internal::MutexLock lock(&impl_->mu);
    impl_->stopping = true;
  }
  if (impl_->wake_fd.valid()) Poke(impl_->wake_fd.get());
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->ready.store(false);
}

absl::Status FileIndex::status() const {
  if (!impl_->root_status.ok()) return impl_->root_status;
  internal::MutexLock lock(&impl_->mu);
  return impl_->status;
}

const std::string& FileIndex::root() const { return impl_->root; }

absl::StatusOr<v1::SearchResponse> FileIndex::Search(const v1::SearchRequest& request,
                                                     absl::Time deadline) const {
  if (!impl_->ready.load()) {
    impl_->searches_walked.fetch_add(1, std::memory_order_relaxed);
    return impl_->walker.Search(request, deadline);
  }
  // Checked once, for the index and for the walk it may fall back to.
  internal::PreparedSearch prepared;
  if (absl::Status checked =
          internal::PrepareSearch(impl_->root_fd.get(), impl_->options.search, request, deadline,
                                  /*streaming=*/false, &prepared);
      !checked.ok()) {
    impl_->searches_indexed.fetch_add(1, std::memory_order_relaxed);
    return checked;
  }
  std::optional<absl::StatusOr<v1::SearchResponse>> answer = impl_->SearchIndex(prepared);
  if (answer.has_value()) {
    impl_->searches_indexed.fetch_add(1, std::memory_order_relaxed);
    return *std::move(answer);
  }
  impl_->searches_walked.fetch_add(1, std::memory_order_relaxed);
  return internal::WalkPreparedSearch(&prepared, impl_->options.search.threads);
}

absl::Status FileIndex::SaveSnapshot() const { return impl_->SaveSnapshot(); }

bool FileIndex::WaitUntilReady(absl::Time deadline) const {
  internal::MutexLock lock(&impl_->mu);
  for (;;) {
    if (impl_->ready.load()) return true;
    if (!impl_->running || impl_->stopping) return false;
    if (impl_->changed.WaitUntil(deadline)) return impl_->ready.load();
  }
}

bool FileIndex::WaitUntilAttributesKept(absl::Time deadline) const {
  internal::MutexLock lock(&impl_->mu);
  for (;;) {
    if (impl_->attributes_ready.load()) return true;
    if (!impl_->running || impl_->stopping) return false;
    // The thread signals at each turn of its loop.
    if (impl_->changed.WaitUntil(deadline)) return impl_->attributes_ready.load();
  }
}

bool FileIndex::WaitUntilCurrent(absl::Time deadline) const {
  const absl::Time now = absl::Now();
  if (impl_->wake_fd.valid()) Poke(impl_->wake_fd.get());
  internal::MutexLock lock(&impl_->mu);
  for (;;) {
    if (impl_->ready.load() && impl_->as_of >= now) return true;
    if (!impl_->running || impl_->stopping) return false;
    if (impl_->changed.WaitUntil(deadline)) return false;
  }
}

FileIndexStats FileIndex::stats() const {
  FileIndexStats s;
  s.ready = impl_->ready.load();
  {
    internal::ReaderMutexLock lock(&impl_->tree_mu);
    s.entries = impl_->tree.size();
    s.directories = impl_->tree.directories();
    s.memory_bytes = impl_->tree.MemoryBytes();
  }
  {
    internal::MutexLock lock(&impl_->mu);
    s.as_of = impl_->as_of;
    s.build_time = impl_->build_time;
    s.watch_mode = impl_->watch_mode;
    s.from_snapshot = impl_->from_snapshot;
    s.snapshot_load_time = impl_->snapshot_load_time;
    s.snapshot_refused = impl_->snapshot_refused;
    s.snapshot_error = impl_->snapshot_error.ok() ? "" : impl_->snapshot_error.ToString();
    s.snapshots_written = impl_->snapshots_written;
    s.unwatched_directories = impl_->unwatched.size();
    s.attributes_time = impl_->attributes_time;
  }
  s.attributes_ready = impl_->attributes_ready.load();
  s.events = impl_->events.load();
  s.directories_refreshed = impl_->refreshed.load();
  s.searches_indexed = impl_->searches_indexed.load();
  s.searches_walked = impl_->searches_walked.load();
  s.overflows = impl_->overflows.load();
  s.rescans = impl_->rescans.load();
  s.verified_directories = impl_->verified.load();
  s.verify_repairs = impl_->repairs.load();
  return s;
}

}  // namespace filemesh
