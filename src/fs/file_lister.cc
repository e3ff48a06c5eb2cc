#include "filemesh/file_lister.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fs/beneath.h"
#include "fs/dir_reader.h"
#include "fs/entry.h"
#include "fs/errno_status.h"
#include "fs/page_token.h"

namespace filemesh {

using internal::PageKey;
using internal::UniqueFd;

namespace {

// One directory entry while a page is chosen. `name` points into an arena
// owned by the caller (NUL-terminated there), so a 100k-entry directory costs no allocation per
// name.
struct Candidate {
  std::string_view name;
  uint64_t number = 0;  // sort key for size/mtime (mtime as biased int64)
  bool gone = false;    // removed between getdents and stat
};

// Below this many entries one thread stats faster than several start.
constexpr size_t kParallelStatMin = 4096;
constexpr unsigned kMaxStatThreads = 4;
// Entries read or stat'ed between looks at the clock.
constexpr uint64_t kDeadlineCheckEvery = 4096;

absl::Status TooLate(const std::string& path, uint64_t read) {
  return absl::DeadlineExceededError(absl::StrCat("the deadline passed while listing ",
                                                  internal::QuotePath(path), " (", read,
                                                  " entries read)"));
}

// Runs fn(begin, end) over [0, n) in contiguous chunks, one per core for large
// n, on the calling thread plus helpers.
template <typename Fn>
void ForEachChunk(size_t n, Fn fn) {
  const unsigned cores =
      std::max(1u, std::min(std::thread::hardware_concurrency(), kMaxStatThreads));
  const size_t chunks = n < kParallelStatMin ? 1 : cores;
  std::vector<std::thread> helpers;
  const size_t per = (n + chunks - 1) / chunks;
  for (size_t c = 1; c < chunks; ++c) {
    const size_t begin = std::min(n, c * per);
    const size_t end = std::min(n, (c + 1) * per);
    try {
      helpers.emplace_back(fn, begin, end);
    } catch (const std::system_error&) {
      fn(begin, end);  // no thread to be had (a limit): this one does it
    }
  }
  fn(0, std::min(n, per));
  for (std::thread& t : helpers) t.join();
}

// Orders mtimes (signed ns) as unsigned numbers, so one comparison serves all.
uint64_t MtimeKey(const struct stat& st) {
  const int64_t ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return static_cast<uint64_t>(ns) ^ (uint64_t{1} << 63);
}

// What a valid request asks for.
struct ListPlan {
  std::string path;  // cleaned, relative to the root
  uint32_t page_size = 0;
  v1::SortField sort = v1::SORT_FIELD_NAME;
  bool descending = false;
  bool include_hidden = false;
  PageKey want;                  // the key of this listing, for the next token
  std::optional<PageKey> after;  // from page_token: list what comes after it
};

// A directory's names in one arena (so a 100k-entry directory costs no
// allocation per name), each NUL-terminated there so it can be passed to the
// kernel in place.
struct NameArena {
  std::string bytes;
  std::vector<std::pair<size_t, size_t>> spans;  // offset, length
  uint64_t read = 0;                             // entries read, hidden ones included
};

absl::Status ReadNames(int dir_fd, const ListPlan& plan, absl::Time deadline, NameArena* names) {
  internal::DirReader reader;
  reader.Reset(dir_fd);
  internal::DirEntry dirent;
  while (reader.Next(&dirent)) {
    if (++names->read % kDeadlineCheckEvery == 0 && absl::Now() >= deadline) {
      return TooLate(plan.path, names->read);
    }
    if (!plan.include_hidden && dirent.name.front() == '.') continue;
    names->spans.emplace_back(names->bytes.size(), dirent.name.size());
    names->bytes.append(dirent.name);
    names->bytes.push_back('\0');
  }
  if (reader.error() != 0) {
    return internal::ErrnoToStatus(reader.error(), "read directory", plan.path);
  }
  return absl::OkStatus();
}

// Sorting by size or time needs every entry's stat: the one cost that grows
// with the directory, so it is spread over the cores. An entry removed since
// it was read is simply not listed.
// By size, a symlink whose target is withheld counts as 0 bytes, as it is
// reported: its place in the order (or a page token) must not tell the
// target's length.
absl::Status StatCandidates(int dir_fd, const ListPlan& plan, const internal::Redaction& redaction,
                            absl::Time deadline, uint64_t read,
                            std::vector<Candidate>* candidates) {
  const bool by_size = plan.sort == v1::SORT_FIELD_SIZE;
  std::atomic<bool> late{false};
  ForEachChunk(candidates->size(), [&](size_t begin, size_t end) {
    struct stat st;
    for (size_t i = begin; i < end; ++i) {
      if ((i - begin) % kDeadlineCheckEvery == kDeadlineCheckEvery - 1 &&
          (late.load(std::memory_order_relaxed) || absl::Now() >= deadline)) {
        late.store(true, std::memory_order_relaxed);
        return;
      }
      Candidate& c = (*candidates)[i];
      c.gone = internal::StatAt(dir_fd, c.name.data(), &st) != 0;
      c.number = !by_size ? MtimeKey(st)
                 : S_ISLNK(st.st_mode) && redaction.outside_targets
                     ? internal::ReportedSize(dir_fd, internal::JoinPath(plan.path, c.name), c.name,
                                              st, redaction)
                     : static_cast<uint64_t>(st.st_size);
    }
  });
  if (late.load()) return TooLate(plan.path, read);
  candidates->erase(std::remove_if(candidates->begin(), candidates->end(),
                                   [](const Candidate& c) { return c.gone; }),
                    candidates->end());
  return absl::OkStatus();
}

// Keeps the page's candidates, in order: those after the token, the first
// page_size of them. True when more follow.
bool SelectPage(const ListPlan& plan, std::vector<Candidate>* candidates) {
  // Strict order on (number, name); descending reverses both.
  const bool desc = plan.descending;
  const auto before = [desc](uint64_t an, std::string_view a, uint64_t bn, std::string_view b) {
    if (an != bn) return desc ? an > bn : an < bn;
    return desc ? a > b : a < b;
  };
  if (plan.after.has_value()) {
    const std::string_view after_name = plan.after->name;
    const uint64_t after_number = plan.after->number;
    candidates->erase(std::remove_if(candidates->begin(), candidates->end(),
                                     [&](const Candidate& c) {
                                       return !before(after_number, after_name, c.number, c.name);
                                     }),
                      candidates->end());
  }
  const auto order = [&](const Candidate& a, const Candidate& b) {
    return before(a.number, a.name, b.number, b.name);
  };
  const bool more = candidates->size() > plan.page_size;
  if (more) {
    std::nth_element(candidates->begin(), candidates->begin() + plan.page_size, candidates->end(),
                     order);
    candidates->resize(plan.page_size);
  }
  std::sort(candidates->begin(), candidates->end(), order);
  return more;
}

}  // namespace

struct FileLister::Impl {
  std::string root;
  UniqueFd root_fd;
  absl::Status root_status;
  FileListerOptions options;
  internal::PageTokenCodec tokens;

  Impl(std::string r, FileListerOptions o)
      : root(std::move(r)), options(std::move(o)), tokens(options.page_token_secret) {
    root_fd.Reset(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd.valid()) root_status = internal::ErrnoToStatus(errno, "open root", root);
  }

  absl::StatusOr<ListPlan> Plan(const v1::ListRequest& request) const;
  // How symlink targets in `dir_fd` are judged (FileEntry's redaction).
  internal::Redaction RedactionFor(int dir_fd, const ListPlan& plan) const;
  v1::ListResponse FillPage(int dir_fd, const ListPlan& plan, const internal::Redaction& redaction,
                            const std::vector<Candidate>& candidates, bool more) const;
};

absl::StatusOr<ListPlan> FileLister::Impl::Plan(const v1::ListRequest& request) const {
  ListPlan plan;
  const std::string& requested = request.raw_path().empty() ? request.path() : request.raw_path();
  absl::StatusOr<std::string> path = internal::CleanRelativePath(requested);
  if (!path.ok()) return path.status();
  plan.path = *std::move(path);
  plan.page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  if (plan.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size ", request.page_size(), " is above the limit of ", kMaxPageSize));
  }
  plan.sort = request.sort() == v1::SORT_FIELD_UNSPECIFIED ? v1::SORT_FIELD_NAME : request.sort();
  if (!v1::SortField_IsValid(plan.sort)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sort ", static_cast<int>(plan.sort), " is unknown"));
  }
  plan.descending = request.descending();
  plan.include_hidden = request.include_hidden();
  plan.want.sort = static_cast<uint8_t>(plan.sort);
  plan.want.descending = plan.descending;
  plan.want.include_hidden = plan.include_hidden;
  plan.want.path_digest = tokens.PathDigest(plan.path);
  if (request.page_token().empty()) return plan;
  absl::StatusOr<PageKey> decoded = tokens.Decode(request.page_token());
  if (!decoded.ok()) return decoded.status();
  if (decoded->sort != plan.want.sort || decoded->descending != plan.want.descending ||
      decoded->include_hidden != plan.want.include_hidden ||
      decoded->path_digest != plan.want.path_digest) {
    return absl::InvalidArgumentError(
        "page_token belongs to a different request: path, sort, descending and "
        "include_hidden must stay the same while paging");
  }
  plan.after = *std::move(decoded);
  return plan;
}

// The page's entries, ending early before the first that does not fit in the
// byte budget (one entry always goes, so paging moves on), and the token of
// the next page when there is one.
internal::Redaction FileLister::Impl::RedactionFor(int dir_fd, const ListPlan& plan) const {
  // Targets are judged from where the directory really is below the root,
  // not from the path's text (which may pass through a link like a/up -> ..).
  internal::Redaction redaction;
  redaction.outside_targets = options.redact_outside_targets;
  if (redaction.outside_targets) {
    const std::optional<int64_t> depth = internal::DepthBelow(root_fd.get(), dir_fd);
    redaction.depth_correction =
        depth.has_value() ? std::optional<int64_t>(*depth - internal::LexicalDepth(plan.path))
                          : std::nullopt;
  }
  return redaction;
}

v1::ListResponse FileLister::Impl::FillPage(int dir_fd, const ListPlan& plan,
                                            const internal::Redaction& redaction,
                                            const std::vector<Candidate>& candidates,
                                            bool more) const {
  v1::ListResponse response;
  response.mutable_entries()->Reserve(static_cast<int>(candidates.size()));
  size_t bytes = 0;
  size_t end = candidates.size();  // the page covers candidates [0, end)
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    struct stat st;
    if (internal::StatAt(dir_fd, c.name.data(), &st) != 0) continue;
    v1::FileEntry* entry = response.add_entries();
    internal::FillEntry(dir_fd, internal::JoinPath(plan.path, c.name), c.name, st, redaction,
                        entry);
    bytes += internal::RepeatedFieldBytes(*entry);
    if (bytes > options.max_response_bytes && response.entries_size() > 1) {
      response.mutable_entries()->RemoveLast();
      end = i;
      more = true;
      break;
    }
  }
  if (more && end > 0) {
    PageKey next = plan.want;
    next.number = candidates[end - 1].number;
    next.name = std::string(candidates[end - 1].name);
    response.set_next_page_token(tokens.Encode(next));
  }
  return response;
}

FileLister::FileLister(std::string root, FileListerOptions options)
    : impl_(std::make_unique<Impl>(std::move(root), std::move(options))) {}
FileLister::~FileLister() = default;
FileLister::FileLister(FileLister&&) noexcept = default;
FileLister& FileLister::operator=(FileLister&&) noexcept = default;

absl::Status FileLister::status() const { return impl_->root_status; }
const std::string& FileLister::root() const { return impl_->root; }

absl::StatusOr<v1::ListResponse> FileLister::List(const v1::ListRequest& request,
                                                  absl::Time deadline) const {
  if (!impl_->root_status.ok()) return impl_->root_status;
  if (absl::Now() >= deadline) {
    return absl::DeadlineExceededError("the deadline passed before the listing began");
  }
  absl::StatusOr<ListPlan> plan = impl_->Plan(request);
  if (!plan.ok()) return plan.status();
  absl::StatusOr<UniqueFd> dir =
      internal::OpenDirectoryInScope(impl_->root_fd.get(), request.scope(), plan->path,
                                     internal::Resolver::kAuto, impl_->options.one_file_system);
  if (!dir.ok()) return dir.status();

  NameArena names;
  if (absl::Status status = ReadNames(dir->get(), *plan, deadline, &names); !status.ok()) {
    return status;
  }
  // The views are taken once the arena stops growing.
  std::vector<Candidate> candidates(names.spans.size());
  for (size_t i = 0; i < names.spans.size(); ++i) {
    candidates[i].name =
        std::string_view(names.bytes).substr(names.spans[i].first, names.spans[i].second);
  }
  const internal::Redaction redaction = impl_->RedactionFor(dir->get(), *plan);
  if (plan->sort != v1::SORT_FIELD_NAME) {
    absl::Status status =
        StatCandidates(dir->get(), *plan, redaction, deadline, names.read, &candidates);
    if (!status.ok()) return status;
  }
  const bool more = SelectPage(*plan, &candidates);
  return impl_->FillPage(dir->get(), *plan, redaction, candidates, more);
}

}  // namespace filemesh
