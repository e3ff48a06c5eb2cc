// FileSearcher::Search over a generated tree of about 50,000 entries
// (20 x 20 directories of 120 files with mixed extensions, plus a few hidden
// entries), with a `*.h` glob, a regex and a substring, on one thread and on
// the default number (one per core).
//
// The tree is created once, on first use, under /tmp (mkdtemp) and is removed
// at exit. Times are wall-clock (the walk is multi-threaded).

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "filemesh/file_searcher.hpp"
#include "filemesh/v1/filemesh.pb.h"
#include "temp_tree.h"

namespace filemesh {
namespace {

constexpr int kTopDirs = 20;
constexpr int kSubDirs = 20;
constexpr int kFilesPerDir = 120;

const bench::TempDir& Tree() {
  static const bench::TempDir dir("filemesh-searcher-bench");
  static const bool filled = [] {
    const auto start = std::chrono::steady_clock::now();
    static const char* const kExtensions[] = {".h",  ".cc", ".cpp",  ".hpp", ".py", ".txt",
                                              ".md", ".o",  ".json", ".rs",  ".js", ".H"};
    static const char* const kStems[] = {"widget", "parser", "test_util", "main", "config",
                                         "README", "index",  "matcher",   "io",   "lexer"};
    constexpr int kExt = sizeof kExtensions / sizeof kExtensions[0];
    constexpr int kStem = sizeof kStems / sizeof kStems[0];
    char name[96];
    int64_t entries = 0;
    for (int t = 0; t < kTopDirs; ++t) {
      std::snprintf(name, sizeof name, "module_%02d", t);
      const int top = bench::MakeDir(dir.fd(), name);
      bench::Touch(top, ".hidden_config");
      entries += 2;
      for (int s = 0; s < kSubDirs; ++s) {
        std::snprintf(name, sizeof name, "%s_%02d", s % 2 == 0 ? "src" : "include", s);
        const int sub = bench::MakeDir(top, name);
        ++entries;
        for (int f = 0; f < kFilesPerDir; ++f) {
          std::snprintf(name, sizeof name, "%s_%d%s", kStems[(f + s) % kStem], f,
                        kExtensions[(f + t) % kExt]);
          bench::Touch(sub, name);
          ++entries;
        }
        close(sub);
      }
      close(top);
    }
    std::fprintf(stderr, "created %lld entries in %s in %.2f s\n", static_cast<long long>(entries),
                 dir.path().c_str(), bench::SecondsSince(start));
    return true;
  }();
  (void)filled;
  return dir;
}

const FileSearcher& Searcher(int threads) {
  static std::map<int, std::unique_ptr<FileSearcher>>* const searchers =
      new std::map<int, std::unique_ptr<FileSearcher>>;
  std::unique_ptr<FileSearcher>& s = (*searchers)[threads];
  if (s == nullptr) {
    FileSearcherOptions options;
    options.threads = threads;
    s = std::make_unique<FileSearcher>(Tree().path(), options);
    if (!s->status().ok()) {
      std::fprintf(stderr, "FileSearcher: %s\n", s->status().ToString().c_str());
      std::exit(1);
    }
  }
  return *s;
}

// Arguments: walker threads (0 = one per core).
void BM_Search(benchmark::State& state, const char* pattern, v1::PatternSyntax syntax) {
  const FileSearcher& searcher = Searcher(static_cast<int>(state.range(0)));
  v1::SearchRequest request;
  request.set_pattern(pattern);
  request.set_syntax(syntax);
  request.set_max_results(FileSearcher::kMaxResults);
  uint64_t scanned = 0;
  int matches = 0;
  for (auto _ : state) {
    absl::StatusOr<v1::SearchResponse> response = searcher.Search(request);
    if (!response.ok()) {
      state.SkipWithError(response.status().ToString().c_str());
      return;
    }
    if (response->truncated()) {
      state.SkipWithError("search truncated");
      return;
    }
    scanned += response->scanned_entries();
    matches = response->matches_size();
    benchmark::DoNotOptimize(response);
  }
  state.SetItemsProcessed(static_cast<int64_t>(scanned));  // entries examined
  state.counters["matches"] = matches;
}

constexpr auto kGlob = v1::PATTERN_SYNTAX_GLOB;
constexpr auto kSubstring = v1::PATTERN_SYNTAX_SUBSTRING;
constexpr auto kRegex = v1::PATTERN_SYNTAX_REGEX;

#define FILEMESH_SEARCH_BENCHMARK(label, pattern, syntax) \
  BENCHMARK_CAPTURE(BM_Search, label, pattern, syntax)    \
      ->ArgName("threads")                                \
      ->Arg(1)                                            \
      ->Arg(0)                                            \
      ->UseRealTime()                                     \
      ->Unit(benchmark::kMillisecond)

FILEMESH_SEARCH_BENCHMARK(glob_h, "*.h", kGlob);
FILEMESH_SEARCH_BENCHMARK(glob_re2, "*.[ch]pp", kGlob);
FILEMESH_SEARCH_BENCHMARK(regex, R"(^(parser|lexer)_[0-9]*7\.(h|cc)$)", kRegex);
FILEMESH_SEARCH_BENCHMARK(substring, "util", kSubstring);

}  // namespace
}  // namespace filemesh
