// FileLister::List on one directory of 100,000 empty files: the first page
// (100 entries) sorted by name, size and modified time, and a walk over every
// page by name with page_size 1000. And the reply to one request of
// bench/gateway_bench.sh: a ten-file directory listed and serialized.
//
// The directory is created once, on first use, under /tmp (mkdtemp) and is
// removed at exit.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "filemesh/file_lister.hpp"
#include "filemesh/v1/filemesh.pb.h"
#include "temp_tree.h"

namespace filemesh {
namespace {

constexpr int kFiles = 100000;

const bench::TempDir& Directory() {
  static const bench::TempDir dir("filemesh-lister-bench");
  static const bool filled = [] {
    const auto start = std::chrono::steady_clock::now();
    static const char* const kExtensions[] = {".txt", ".log", ".cc", ".h", ".json", ".png"};
    char name[64];
    for (int i = 0; i < kFiles; ++i) {
      // Scrambled numbering, so creation order is not name order.
      const unsigned n = static_cast<unsigned>((static_cast<uint64_t>(i) * 7919u) % kFiles);
      std::snprintf(name, sizeof name, "file_%06u%s", n, kExtensions[n % 6]);
      bench::Touch(dir.fd(), name);
    }
    std::fprintf(stderr, "created %d files in %s in %.2f s\n", kFiles, dir.path().c_str(),
                 bench::SecondsSince(start));
    return true;
  }();
  (void)filled;
  return dir;
}

const FileLister& Lister() {
  static const FileLister* const lister = [] {
    auto* l = new FileLister(Directory().path());
    if (!l->status().ok()) {
      std::fprintf(stderr, "FileLister: %s\n", l->status().ToString().c_str());
      std::exit(1);
    }
    return l;
  }();
  return *lister;
}

v1::ListResponse MustList(const v1::ListRequest& request) {
  absl::StatusOr<v1::ListResponse> page = Lister().List(request);
  if (!page.ok()) {
    std::fprintf(stderr, "List: %s\n", page.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(page);
}

void BM_ListFirstPage(benchmark::State& state, v1::SortField sort) {
  v1::ListRequest request;
  request.set_page_size(100);
  request.set_sort(sort);
  if (MustList(request).entries_size() != 100) {
    state.SkipWithError("first page does not hold 100 entries");
    return;
  }
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    v1::ListResponse page = MustList(request);
    benchmark::DoNotOptimize(page);
  }
  state.SetItemsProcessed(state.iterations() * kFiles);  // entries considered
}
BENCHMARK_CAPTURE(BM_ListFirstPage, by_name, v1::SORT_FIELD_NAME)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListFirstPage, by_size, v1::SORT_FIELD_SIZE)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListFirstPage, by_modified, v1::SORT_FIELD_MODIFIED)
    ->Unit(benchmark::kMillisecond);

void BM_ListAllPagesByName(benchmark::State& state) {
  v1::ListRequest request;
  request.set_page_size(static_cast<uint32_t>(state.range(0)));
  request.set_sort(v1::SORT_FIELD_NAME);
  int64_t pages = 0;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    request.clear_page_token();
    int64_t entries = 0;
    for (;;) {
      v1::ListResponse page = MustList(request);
      entries += page.entries_size();
      ++pages;
      if (page.next_page_token().empty()) break;
      request.set_page_token(page.next_page_token());
    }
    if (entries != kFiles) {
      state.SkipWithError("the pages do not hold every file exactly once");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * kFiles);
  state.counters["pages"] =
      benchmark::Counter(static_cast<double>(pages), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_ListAllPagesByName)->ArgName("page_size")->Arg(1000)->Unit(benchmark::kMillisecond);

// What mserv1 does for each request of bench/gateway_bench.sh: list a
// directory of ten files (one page, by name) and serialize the reply.
void BM_SmallDirectoryReply(benchmark::State& state) {
  static const bench::TempDir dir("filemesh-lister-small");
  static const FileLister* const lister = [] {
    char name[32];
    for (int i = 1; i <= 10; ++i) {
      std::snprintf(name, sizeof name, "file%02d.txt", i);
      bench::Touch(dir.fd(), name);
    }
    return new FileLister(dir.path());
  }();
  const v1::ListRequest request;
  std::string bytes;
  for (auto _ : state) {  // NOLINT(clang-analyzer-deadcode.DeadStores)
    absl::StatusOr<v1::ListResponse> page = lister->List(request);
    if (!page.ok() || page->entries_size() != 10) {
      state.SkipWithError("the directory does not list as ten entries");
      return;
    }
    page->SerializeToString(&bytes);
    benchmark::DoNotOptimize(bytes);
  }
}
BENCHMARK(BM_SmallDirectoryReply)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace filemesh
