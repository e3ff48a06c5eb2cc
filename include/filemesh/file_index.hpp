// FileIndex answers FileSearcher's searches from a live index of a root
// instead of walking the tree at each request.
//
// Start() builds the index in the background with the same parallel walk as
// FileSearcher (names as exact bytes, types, parents), then reads each
// entry's size, modification time and mode (an lstat each: seconds for
// millions of entries, during which searches read them from disk for their
// matches, as the walk does), and keeps all of it current: fanotify with a
// filesystem mark where the process may (CAP_SYS_ADMIN, Linux >= 5.9), else
// inotify with a watch per directory (at most `max_watches`); a write, chmod
// or touch is a report too. Every change is applied within milliseconds of the
// kernel's report; a lost report (the kernel's queue overflowed) makes it
// read every directory again, and a periodic check compares a sample of
// directories with the disk and repairs what differs (both counted in
// stats()).
//
// Search() takes the same requests as FileSearcher::Search, checks them the
// same way (same errors) and answers with the same entries, sorted the same
// way, with `index_as_of` set: every change made on disk before that time is
// in the answer. A symlink's target, and the attributes of an entry with
// other hard links (a change through another name is reported under that
// name only), are read from disk for each answer. Not seen: a change of a
// file's time made only by writing through a shared mapping (no report is
// made of it; the periodic check repairs it). Until the index is ready, or when the index cannot
// answer a request (its start directory is not indexed, e.g. made a moment ago, or on a filesystem
// the index left out), the request is walked as FileSearcher would, and `index_as_of` is left
// unset. The index is searched by the same threads as the walk (FileSearcherOptions::threads); as
// with the walk, which entries a capped search (max_results, the byte budget, the deadline) keeps
// when it stops early is not set.
//
// Thread safety: Search(), stats() and WaitUntilCurrent() may be called from
// any number of threads at once, also while the index is built or updated.

#ifndef FILEMESH_FILE_INDEX_HPP_
#define FILEMESH_FILE_INDEX_HPP_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/file_searcher.hpp"
#include "filemesh/file_service.hpp"
#include "filemesh/v1/filemesh.pb.h"

namespace filemesh {

// How the index hears of changes.
enum class IndexWatch {
  kAuto,      // fanotify where the process may, else inotify
  kFanotify,  // fanotify only: Start() fails where it is not allowed
  kInotify,   // inotify only
};

struct FileIndexOptions {
  // The searches' options, as FileSearcher's: threads (of the build too),
  // byte budget, pattern limits, one_file_system (the index never enters
  // another filesystem when it is set), redaction.
  FileSearcherOptions search;
  IndexWatch watch = IndexWatch::kAuto;
  // inotify only: directories watched at most. Past it (or past the system's
  // fs.inotify.max_user_watches) a directory is indexed but not watched, and
  // read again at each verification (stats().unwatched_directories).
  size_t max_watches = 65536;
  // Entries indexed at most (each costs about 59 bytes: 35 for the name and
  // links, 24 for the attributes). A tree that has
  // more is not indexed: searches walk it, status() says why.
  size_t max_entries = 50'000'000;
  // How often a sample of `verify_sample` directories is read and compared
  // with the index (differences are repaired and counted). Zero: never.
  absl::Duration verify_interval = absl::Minutes(5);
  size_t verify_sample = 256;
  // A search with a size bound uses the sizes kept; for each entry its
  // pattern names whose size is not kept (not read yet, or other hard links)
  // it reads the size, as the walk does; past this many such entries it is
  // left to the walk (which holds none of them), so that a broad pattern
  // cannot make the index hold a path per entry of the tree (about 70 bytes
  // each).
  size_t max_sized_candidates = 100'000;
  // Where the index keeps its snapshot (the file filemesh-index.snapshot);
  // empty: none. At Start a snapshot of this root (same directory, same
  // one_file_system, this format) is loaded and searched at once, then every
  // directory is read again to catch up with what changed meanwhile; a
  // snapshot that is corrupt, of another root or of another format is
  // ignored (stats().snapshot_refused) and the index is built. Written after
  // each build, every `snapshot_interval` (zero: only then and at Stop), and
  // at Stop; atomically (a temporary file renamed over the old one), so a
  // crash at any moment leaves the old snapshot or the new one.
  std::string snapshot_dir;
  absl::Duration snapshot_interval = absl::Minutes(10);
  // A snapshot whose as_of is older than this is ignored (the index built).
  absl::Duration max_snapshot_age = absl::InfiniteDuration();
  // False: Start builds the index (or loads its snapshot) and does no more:
  // no change reports, no catch-up after a load, no periodic work; answers
  // are as of the build or the snapshot (index_as_of says which). For a
  // process that answers and exits, such as `filemesh find --index-dir`.
  bool follow = true;
};

struct FileIndexStats {
  bool ready = false;  // built: searches use the index
  // "fanotify", "inotify", "none" (FileIndexOptions::follow false), or ""
  // before Start().
  std::string watch_mode;
  uint64_t entries = 0;
  uint64_t directories = 0;
  // Bytes the index holds (names, links, directories, the identity map).
  uint64_t memory_bytes = 0;
  // Time the first build took (after a snapshot: the catch-up).
  absl::Duration build_time;
  // The index was loaded from its snapshot, in this time; or why a snapshot
  // found was not used. Snapshots written, and the last write's error.
  bool from_snapshot = false;
  absl::Duration snapshot_load_time;
  std::string snapshot_refused;
  uint64_t snapshots_written = 0;
  std::string snapshot_error;
  // Every change before this time is indexed (InfinitePast before ready).
  absl::Time as_of = absl::InfinitePast();
  // Change reports read from the kernel, directories read again because of
  // them, and searches answered from the index / walked instead.
  uint64_t events = 0;
  uint64_t directories_refreshed = 0;
  uint64_t searches_indexed = 0;
  uint64_t searches_walked = 0;
  // Lost reports (the kernel's queue overflowed), each followed by a rescan
  // of the whole tree, and the rescans done for any reason.
  uint64_t overflows = 0;
  uint64_t rescans = 0;
  // Directories the periodic check read, and differences it repaired.
  uint64_t verified_directories = 0;
  uint64_t verify_repairs = 0;
  // inotify: directories indexed but not watched (max_watches, or the
  // system's limit).
  uint64_t unwatched_directories = 0;
  // Every entry's size, time and mode are kept (read after the build; false
  // again while those of a new subtree, or after lost reports all of them,
  // are read), and the time the first reading took.
  bool attributes_ready = false;
  absl::Duration attributes_time;
};

class FileIndex : public FileSearcherInterface {
 public:
  // Opens `root` and keeps it open (see FileLister); builds nothing yet.
  explicit FileIndex(std::string root, FileIndexOptions options = {});
  // Stops the background thread (see Stop).
  ~FileIndex() override;

  FileIndex(const FileIndex&) = delete;
  FileIndex& operator=(const FileIndex&) = delete;

  // Starts the background thread that builds the index and follows changes.
  // Errors: the root could not be opened; no way to follow changes
  // (kFanotify where fanotify is not allowed, inotify not available);
  // FailedPrecondition if started before.
  absl::Status Start();
  // Stops following changes and joins the thread; searches walk from then
  // on. Idempotent.
  void Stop();

  // OK while the index serves (or is being built); otherwise why it does not
  // (the root, too many entries, the change reports failed).
  absl::Status status() const;
  const std::string& root() const;

  // As FileSearcher::Search (see above).
  absl::StatusOr<v1::SearchResponse> Search(
      const v1::SearchRequest& request,
      absl::Time deadline = absl::InfiniteFuture()) const override;

  // Writes the snapshot now (see FileIndexOptions::snapshot_dir).
  // FailedPrecondition without a snapshot directory, Unavailable before the
  // index is built; the file system's errors.
  absl::Status SaveSnapshot() const;

  // Waits until searches are answered from the index (built, or loaded from
  // its snapshot). False when `deadline` passed first or the index failed
  // or stopped.
  bool WaitUntilReady(absl::Time deadline) const;

  // Waits until every change made before the call is in the index (the
  // index is built and the reports read so far are applied). False when
  // `deadline` passed first or the index stopped.
  bool WaitUntilCurrent(absl::Time deadline) const;

  // Waits until every entry's size, time and mode are kept
  // (stats().attributes_ready). False when `deadline` passed first, or the
  // index stopped or does not follow changes (FileIndexOptions::follow false:
  // they are never read; its searches read them from disk).
  bool WaitUntilAttributesKept(absl::Time deadline) const;

  FileIndexStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh

#endif  // FILEMESH_FILE_INDEX_HPP_
