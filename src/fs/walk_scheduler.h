// WalkScheduler: how the walkers of one parallel search share directories.
// Each walker reads depth-first from a stack of its own (no lock per
// directory) and, when another walker waits, moves the older half of it (the
// directories nearest the top, so the largest subtrees) to the shared stack.
// The walk is over when every walker waits with the shared stack empty, or
// when it is stopped. The streaming caller also waits here for its turns to
// deliver matches.

#ifndef FILEMESH_SRC_FS_WALK_SCHEDULER_H_
#define FILEMESH_SRC_FS_WALK_SCHEDULER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "filemesh/internal/mutex.hpp"
#include "fs/unique_fd.h"

namespace filemesh::internal {

// A directory to read.
struct WorkItem {
  // An open directory `rel_path` is reached from (see DirectoryFds).
  std::shared_ptr<const UniqueFd> base;
  std::string rel_path;    // exact bytes, relative to the search start ("" is the start)
  size_t base_offset = 0;  // rel_path.substr(base_offset) is relative to `base`
  uint32_t depth = 0;      // the start directory is depth 0
  uint32_t tag = 0;        // the walker's own (FileIndex: the directory's node)
};

class WalkScheduler {
 public:
  enum class Next {
    kItem,     // a directory was put on the walker's stack
    kDeliver,  // the deliverer's turn to hand matches (or progress) over
    kDone,     // the walk is over (every directory read, or stopped)
  };

  // `stopped` is the walk's stop flag; the scheduler only reads it.
  WalkScheduler(WorkItem first, const std::atomic<bool>* stopped);

  // A pool thread joins the walk: false when it is over or closed already.
  bool Join();
  // That pool thread is done with the walk (after Join returned true).
  void Leave();
  // The calling thread is done walking: no one joins any more; waits for the
  // pool threads inside, then drops the directories nobody read, so their
  // fds close now rather than when the last queued helper lets go.
  void Close();

  // For a walker whose own stack is empty: a directory onto `stack`, or the
  // end of the walk. The deliverer (`pending` non-null: the matches waiting
  // for it) also gets kDeliver when `*pending` is not 0 or `tick` passed.
  Next Take(std::vector<WorkItem>* stack, const std::atomic<size_t>* pending, absl::Time tick);

  // Whether a walker waits in Take, so sharing is worth it.
  bool SomeoneWaits() const { return idle_.load(std::memory_order_relaxed) > 0; }
  // Moves the older half of `stack` to the shared stack if a walker waits.
  void Share(std::vector<WorkItem>* stack);

  // A plain walker's loop (no deliverer): the directories of `stack`, else
  // of the shared stack, each to `process(item)` (which may push more onto
  // `stack`), sharing the older half of `stack` when another walker waits;
  // until every directory is read or the walk is stopped.
  template <typename Process>
  void Drive(std::vector<WorkItem>* stack, Process&& process) {
    for (;;) {
      if (stopped_->load(std::memory_order_relaxed)) {
        stack->clear();
        return;
      }
      if (stack->empty() && Take(stack, nullptr, absl::InfiniteFuture()) == Next::kDone) return;
      WorkItem item = std::move(stack->back());
      stack->pop_back();
      process(item);
      if (stack->size() > 1 && SomeoneWaits()) Share(stack);
    }
  }

  // Matches were handed over: wakes the deliverer if it waits in Take.
  void MatchesPending();
  // The walk was stopped: wakes every walker waiting in Take.
  void Wake();

 private:
  const std::atomic<bool>* const stopped_;
  Mutex mu_;
  // Work in shared_, the walk over, or (for the deliverer) matches waiting.
  CondVar cv_{&mu_};
  std::vector<WorkItem> shared_ ABSL_GUARDED_BY(mu_);
  // Walkers in Take; changed under mu_, read without it by SomeoneWaits.
  std::atomic<int> idle_{0};
  // Pool threads between Join and Leave.
  int helpers_ ABSL_GUARDED_BY(mu_) = 0;
  CondVar helpers_done_{&mu_};
  // Every directory was read.
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Close was called.
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // The deliverer waits in Take. Sequentially consistent with the pending
  // count: a hand-over either sees it set, or the deliverer sees the count.
  std::atomic<bool> deliverer_waiting_{false};
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_FS_WALK_SCHEDULER_H_
