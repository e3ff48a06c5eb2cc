// Matcher::Match over a fixed list of realistic names and paths: the glob fast
// paths (plain byte comparisons), globs that need RE2, path globs, substring
// and regex, each case-sensitive and case-insensitive.
//
// items_per_second is names matched per second.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "filemesh/v1/filemesh.pb.h"
#include "fs/matcher.h"

namespace filemesh {
namespace {

using internal::Matcher;

// Relative paths as a search would see them; names are their last component.
const std::vector<std::string>& Paths() {
  static const auto* const paths = new std::vector<std::string>{
      "src/fs/matcher.h",
      "src/fs/matcher.cc",
      "src/fs/file_searcher.cc",
      "src/fs/dir_reader.h",
      "src/cli/commands.cc",
      "src/cli/main.cc",
      "include/filemesh/file_lister.hpp",
      "include/filemesh/file_searcher.hpp",
      "include/filemesh/names.hpp",
      "tests/fs/matcher_test.cc",
      "tests/fs/file_lister_test.cc",
      "proto/filemesh/v1/filemesh.proto",
      "build/release/proto/filemesh/v1/filemesh.pb.h",
      "build/release/proto/filemesh/v1/filemesh.pb.cc",
      "build/release/CMakeFiles/filemesh_fs.dir/fs/matcher.cc.o",
      "build/release/libfilemesh_fs.a",
      "CMakeLists.txt",
      "CMakePresets.json",
      "README.md",
      "LICENSE",
      ".gitignore",
      ".clang-format",
      "docs/errors.md",
      "docs/names.md",
      "third_party/abseil-cpp/absl/strings/str_cat.h",
      "third_party/abseil-cpp/absl/strings/str_cat.cc",
      "third_party/abseil-cpp/absl/container/flat_hash_map.h",
      "third_party/re2/re2/re2.h",
      "third_party/re2/re2/prog.cc",
      "third_party/linux/include/uapi/linux/openat2.h",
      "usr/include/x86_64-linux-gnu/sys/stat.h",
      "usr/include/c++/12/bits/stl_algo.h",
      "usr/include/c++/12/unordered_map",
      "usr/lib/python3/dist-packages/setuptools/__init__.py",
      "usr/share/doc/libre2-dev/changelog.Debian.gz",
      "usr/share/man/man1/find.1.gz",
      "var/log/syslog.1",
      "var/log/apt/history.log",
      "home/user/Photos/IMG_20240315_184512.JPG",
      "home/user/Photos/IMG_20240315_184530.jpg",
      "home/user/Documents/Quarterly Report Q3.PDF",
      "home/user/Downloads/ubuntu-24.04-desktop-amd64.iso",
      "home/user/.cache/mozilla/firefox/cache2/entries/3F2A9C0B1D7E",
      "node_modules/@types/node/fs/promises.d.ts",
      "node_modules/lodash/lodash.min.js",
      "target/release/deps/libserde-1a2b3c4d5e6f.rlib",
      "Makefile",
      "configure.ac",
      "Dockerfile",
      "résumé-final-v2.docx",
      "データ/集計_2024.csv",
      "src/very/deep/nested/directory/structure/with/many/levels/widget_factory_impl.hpp",
  };
  return *paths;
}

const std::vector<std::string_view>& Names() {
  static const auto* const names = [] {
    auto* out = new std::vector<std::string_view>;
    for (const std::string& p : Paths()) {
      std::string_view v = p;
      const size_t slash = v.rfind('/');
      out->push_back(slash == std::string_view::npos ? v : v.substr(slash + 1));
    }
    return out;
  }();
  return *names;
}

const std::vector<std::string_view>& PathViews() {
  static const auto* const views =
      new std::vector<std::string_view>(Paths().begin(), Paths().end());
  return *views;
}

Matcher MustCreate(std::string_view pattern, v1::PatternSyntax syntax, bool icase) {
  absl::StatusOr<Matcher> m = Matcher::Create(pattern, syntax, icase);
  if (!m.ok()) {
    std::fprintf(stderr, "Matcher::Create(%.*s): %s\n", static_cast<int>(pattern.size()),
                 pattern.data(), m.status().ToString().c_str());
    std::abort();
  }
  return *std::move(m);
}

// Arguments: the pattern, its syntax, case-insensitivity.
void BM_Match(benchmark::State& state, std::string_view pattern, v1::PatternSyntax syntax,
              bool icase) {
  const Matcher matcher = MustCreate(pattern, syntax, icase);
  const std::vector<std::string_view>& subjects = matcher.matches_path() ? PathViews() : Names();
  size_t hits = 0;
  for (auto _ : state) {
    for (std::string_view s : subjects) {
      const bool hit = matcher.Match(s);
      benchmark::DoNotOptimize(hit);
      hits += hit;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * subjects.size()));
  state.counters["hits/iter"] =
      benchmark::Counter(static_cast<double>(hits) /
                         static_cast<double>(state.iterations() > 0 ? state.iterations() : 1));
}

constexpr auto kGlob = v1::PATTERN_SYNTAX_GLOB;
constexpr auto kSubstring = v1::PATTERN_SYNTAX_SUBSTRING;
constexpr auto kRegex = v1::PATTERN_SYNTAX_REGEX;

// Glob fast paths: suffix, prefix, contains, exact.
BENCHMARK_CAPTURE(BM_Match, glob_suffix, "*.h", kGlob, false);
BENCHMARK_CAPTURE(BM_Match, glob_suffix_icase, "*.h", kGlob, true);
BENCHMARK_CAPTURE(BM_Match, glob_prefix, "IMG_*", kGlob, false);
BENCHMARK_CAPTURE(BM_Match, glob_contains, "*file*", kGlob, false);
BENCHMARK_CAPTURE(BM_Match, glob_exact, "Makefile", kGlob, false);
// Globs compiled to RE2.
BENCHMARK_CAPTURE(BM_Match, glob_re2_class, "*.[ch]pp", kGlob, false);
BENCHMARK_CAPTURE(BM_Match, glob_re2_class_icase, "*.[ch]pp", kGlob, true);
BENCHMARK_CAPTURE(BM_Match, glob_re2_question, "IMG_????????_*.jpg", kGlob, true);
// Path globs (subject: the relative path).
BENCHMARK_CAPTURE(BM_Match, glob_path, "src/**/*.h", kGlob, false);
BENCHMARK_CAPTURE(BM_Match, glob_path_icase, "src/**/*.h", kGlob, true);
// Substring.
BENCHMARK_CAPTURE(BM_Match, substring, "file", kSubstring, false);
BENCHMARK_CAPTURE(BM_Match, substring_icase, "file", kSubstring, true);
// Regex (unanchored unless anchored explicitly).
BENCHMARK_CAPTURE(BM_Match, regex_anchored, R"(^[a-z_]+\.(h|cc|hpp)$)", kRegex, false);
BENCHMARK_CAPTURE(BM_Match, regex_anchored_icase, R"(^[a-z_]+\.(h|cc|hpp)$)", kRegex, true);
BENCHMARK_CAPTURE(BM_Match, regex_unanchored, R"(\d{8}_\d+)", kRegex, false);
BENCHMARK_CAPTURE(BM_Match, regex_alternation, "matcher|searcher|lister", kRegex, false);

}  // namespace
}  // namespace filemesh
