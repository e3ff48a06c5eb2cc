#include "filemesh/file_lister.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
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
};

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

  const std::string& requested = request.raw_path().empty() ? request.path() : request.raw_path();
  absl::StatusOr<std::string> path = internal::CleanRelativePath(requested);
  if (!path.ok()) return path.status();

  const uint32_t page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  if (page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size ", request.page_size(), " is above the limit of ", kMaxPageSize));
  }
  v1::SortField sort = request.sort();
  if (sort == v1::SORT_FIELD_UNSPECIFIED) sort = v1::SORT_FIELD_NAME;
  if (!v1::SortField_IsValid(sort)) {
    return absl::InvalidArgumentError(absl::StrCat("sort ", static_cast<int>(sort), " is unknown"));
  }

  PageKey want;
  want.sort = static_cast<uint8_t>(sort);
  want.descending = request.descending();
  want.include_hidden = request.include_hidden();
  want.path_digest = impl_->tokens.PathDigest(*path);

  bool has_after = false;
  PageKey after;
  if (!request.page_token().empty()) {
    absl::StatusOr<PageKey> decoded = impl_->tokens.Decode(request.page_token());
    if (!decoded.ok()) return decoded.status();
    if (decoded->sort != want.sort || decoded->descending != want.descending ||
        decoded->include_hidden != want.include_hidden ||
        decoded->path_digest != want.path_digest) {
      return absl::InvalidArgumentError(
          "page_token belongs to a different request: path, sort, descending and "
          "include_hidden must stay the same while paging");
    }
    after = *std::move(decoded);
    has_after = true;
  }

  absl::StatusOr<UniqueFd> dir = internal::OpenDirectoryBeneath(impl_->root_fd.get(), *path);
  if (!dir.ok()) return dir.status();

  // Gather names into one arena; the views are taken once it stops growing.
  std::string arena;
  std::vector<std::pair<size_t, size_t>> spans;
  internal::DirReader reader;
  reader.Reset(dir->get());
  internal::DirEntry dirent;
  uint64_t read = 0;
  while (reader.Next(&dirent)) {
    if (++read % kDeadlineCheckEvery == 0 && absl::Now() >= deadline) return TooLate(*path, read);
    if (!request.include_hidden() && dirent.name.front() == '.') continue;
    spans.emplace_back(arena.size(), dirent.name.size());
    arena.append(dirent.name);
    arena.push_back('\0');  // so each name can be passed to the kernel in place
  }
  if (reader.error() != 0) return internal::ErrnoToStatus(reader.error(), "read directory", *path);

  const bool by_name = sort == v1::SORT_FIELD_NAME;
  const bool desc = request.descending();
  std::vector<Candidate> candidates(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    candidates[i].name = std::string_view(arena).substr(spans[i].first, spans[i].second);
  }
  if (!by_name) {
    // Sorting by size or time needs every entry's stat: the one cost that
    // grows with the directory, so it is spread over the cores. An entry
    // removed since it was read is simply not listed.
    const bool by_size = sort == v1::SORT_FIELD_SIZE;
    const int dir_fd = dir->get();
    std::atomic<bool> late{false};
    ForEachChunk(candidates.size(), [&](size_t begin, size_t end) {
      struct stat st;
      for (size_t i = begin; i < end; ++i) {
        if ((i - begin) % kDeadlineCheckEvery == kDeadlineCheckEvery - 1 &&
            (late.load(std::memory_order_relaxed) || absl::Now() >= deadline)) {
          late.store(true, std::memory_order_relaxed);
          return;
        }
        Candidate& c = candidates[i];
        c.gone = internal::StatAt(dir_fd, c.name.data(), &st) != 0;
        c.number = by_size ? static_cast<uint64_t>(st.st_size) : MtimeKey(st);
      }
    });
    if (late.load()) return TooLate(*path, read);
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [](const Candidate& c) { return c.gone; }),
                     candidates.end());
  }

  // Strict order on (number, name); descending reverses both.
  const auto before = [desc](uint64_t an, std::string_view a, uint64_t bn, std::string_view b) {
    if (an != bn) return desc ? an > bn : an < bn;
    return desc ? a > b : a < b;
  };
  if (has_after) {
    const std::string_view after_name = after.name;
    const uint64_t after_number = after.number;
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [&](const Candidate& c) {
                                      return !before(after_number, after_name, c.number, c.name);
                                    }),
                     candidates.end());
  }
  const auto order = [&](const Candidate& a, const Candidate& b) {
    return before(a.number, a.name, b.number, b.name);
  };
  bool more = candidates.size() > page_size;
  if (more) {
    std::nth_element(candidates.begin(), candidates.begin() + page_size, candidates.end(), order);
    candidates.resize(page_size);
  }
  std::sort(candidates.begin(), candidates.end(), order);

  v1::ListResponse response;
  response.mutable_entries()->Reserve(static_cast<int>(candidates.size()));
  // The page ends early, before the first entry that does not fit in the
  // byte budget (one entry always goes, so paging moves on).
  const size_t budget = impl_->options.max_response_bytes;
  size_t bytes = 0;
  size_t end = candidates.size();  // the page covers candidates [0, end)
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    struct stat st;
    if (internal::StatAt(dir->get(), c.name.data(), &st) != 0) continue;
    v1::FileEntry* entry = response.add_entries();
    internal::FillEntry(dir->get(), internal::JoinPath(*path, c.name), c.name, st,
                        impl_->options.redact_outside_targets, entry);
    bytes += internal::RepeatedFieldBytes(*entry);
    if (bytes > budget && response.entries_size() > 1) {
      response.mutable_entries()->RemoveLast();
      end = i;
      more = true;
      break;
    }
  }
  if (more && end > 0) {
    PageKey next = want;
    next.number = candidates[end - 1].number;
    next.name = std::string(candidates[end - 1].name);
    response.set_next_page_token(impl_->tokens.Encode(next));
  }
  return response;
}

}  // namespace filemesh
