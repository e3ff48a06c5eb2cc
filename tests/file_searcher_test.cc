#include "filemesh/file_searcher.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "filemesh/names.hpp"
#include "fs/beneath.h"
#include "fs/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_tree.h"

namespace filemesh {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::Paths;

class FileSearcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // root/
    //   README.md  Makefile  .env
    //   src/ main.cc util.h util.cc .cache/ tmp.h
    //   src/net/ socket.h socket.cc big.bin(5000 bytes)
    //   include/ api.h  include/deep/er/est.h
    //   docs/ guide.MD  link_to_src -> ../src  escape -> /etc
    tree_.File("README.md", 10);
    tree_.File("Makefile", 20);
    tree_.File(".env");
    tree_.Dir("src");
    tree_.File("src/main.cc", 100);
    tree_.File("src/util.h", 30);
    tree_.File("src/util.cc", 40);
    tree_.Dir("src/.cache");
    tree_.File("src/.cache/tmp.h");
    tree_.Dir("src/net");
    tree_.File("src/net/socket.h", 50);
    tree_.File("src/net/socket.cc", 60);
    tree_.File("src/net/big.bin", 5000);
    tree_.Dir("include");
    tree_.File("include/api.h", 70);
    tree_.Dir("include/deep");
    tree_.Dir("include/deep/er");
    tree_.File("include/deep/er/est.h");
    tree_.Dir("docs");
    tree_.File("docs/guide.MD");
    tree_.Symlink("../src", "docs/link_to_src");
    tree_.Symlink("/etc", "docs/escape");
  }

  v1::SearchRequest Request(const std::string& pattern,
                            v1::PatternSyntax syntax = v1::PATTERN_SYNTAX_GLOB) {
    v1::SearchRequest r;
    r.set_pattern(pattern);
    r.set_syntax(syntax);
    return r;
  }

  std::vector<std::string> Find(const v1::SearchRequest& request, int threads = 0) {
    FileSearcherOptions options;
    options.threads = threads;
    absl::StatusOr<v1::SearchResponse> r = FileSearcher(tree_.root(), options).Search(request);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_FALSE(r->truncated());
    return Paths(r->matches());
  }

  testing::TestTree tree_;
};

TEST_F(FileSearcherTest, GlobMatchesNamesAtEveryDepthSortedByPath) {
  EXPECT_THAT(Find(Request("*.h")), ElementsAre("include/api.h", "include/deep/er/est.h",
                                                "src/net/socket.h", "src/util.h"));
}

TEST_F(FileSearcherTest, HiddenEntriesAndTheirSubtreesOnRequest) {
  v1::SearchRequest r = Request("*.h");
  r.set_include_hidden(true);
  EXPECT_THAT(Find(r), ElementsAre("include/api.h", "include/deep/er/est.h", "src/.cache/tmp.h",
                                   "src/net/socket.h", "src/util.h"));
  r.set_pattern(".*");
  EXPECT_THAT(Find(r), ElementsAre(".env", "src/.cache"));
}

TEST_F(FileSearcherTest, GlobWithSlashMatchesRelativePathAndDoubleStarSpansDirectories) {
  EXPECT_THAT(Find(Request("src/*.h")), ElementsAre("src/util.h"));
  EXPECT_THAT(Find(Request("src/**/*.h")), ElementsAre("src/net/socket.h", "src/util.h"));
  EXPECT_THAT(Find(Request("**/er/*")), ElementsAre("include/deep/er/est.h"));
  // Relative to the search path, reported relative to the root.
  v1::SearchRequest r = Request("net/*.cc");
  r.set_path("src");
  EXPECT_THAT(Find(r), ElementsAre("src/net/socket.cc"));
}

TEST_F(FileSearcherTest, SubstringAndRegex) {
  EXPECT_THAT(Find(Request("sock", v1::PATTERN_SYNTAX_SUBSTRING)),
              ElementsAre("src/net/socket.cc", "src/net/socket.h"));
  EXPECT_THAT(Find(Request("^util\\.(h|cc)$", v1::PATTERN_SYNTAX_REGEX)),
              ElementsAre("src/util.cc", "src/util.h"));
}

TEST_F(FileSearcherTest, CaseInsensitiveForEverySyntax) {
  v1::SearchRequest r = Request("*.md");
  EXPECT_THAT(Find(r), ElementsAre("README.md"));
  r.set_case_insensitive(true);
  EXPECT_THAT(Find(r), ElementsAre("README.md", "docs/guide.MD"));
  r = Request("readme", v1::PATTERN_SYNTAX_SUBSTRING);
  r.set_case_insensitive(true);
  EXPECT_THAT(Find(r), ElementsAre("README.md"));
  r = Request("^MAKE", v1::PATTERN_SYNTAX_REGEX);
  r.set_case_insensitive(true);
  EXPECT_THAT(Find(r), ElementsAre("Makefile"));
}

TEST_F(FileSearcherTest, TypeFilter) {
  v1::SearchRequest r = Request("*");
  r.set_type(v1::FILE_TYPE_DIRECTORY);
  EXPECT_THAT(Find(r),
              ElementsAre("docs", "include", "include/deep", "include/deep/er", "src", "src/net"));
  r.set_type(v1::FILE_TYPE_SYMLINK);
  EXPECT_THAT(Find(r), ElementsAre("docs/escape", "docs/link_to_src"));
  r.set_type(v1::FILE_TYPE_OTHER);
  EXPECT_THAT(Find(r), IsEmpty());
  tree_.Fifo("src/pipe");
  EXPECT_THAT(Find(r), ElementsAre("src/pipe"));
}

TEST_F(FileSearcherTest, MaxDepth) {
  v1::SearchRequest r = Request("*.h");
  r.set_max_depth(1);
  EXPECT_THAT(Find(r), IsEmpty());
  r.set_max_depth(2);
  EXPECT_THAT(Find(r), ElementsAre("include/api.h", "src/util.h"));
  r.set_max_depth(3);
  EXPECT_THAT(Find(r), ElementsAre("include/api.h", "src/net/socket.h", "src/util.h"));
}

TEST_F(FileSearcherTest, SizeFiltersAreInclusiveAndOnlyMatchRegularFiles) {
  v1::SearchRequest r = Request("*");
  r.set_min_size(50);
  r.set_max_size(100);
  EXPECT_THAT(Find(r),
              ElementsAre("include/api.h", "src/main.cc", "src/net/socket.cc", "src/net/socket.h"));
  r.clear_max_size();
  r.set_min_size(1000);
  EXPECT_THAT(Find(r), ElementsAre("src/net/big.bin"));
  r.clear_min_size();
  r.set_max_size(0);
  EXPECT_THAT(Find(r), ElementsAre("docs/guide.MD", "include/deep/er/est.h"));
}

TEST_F(FileSearcherTest, MatchesCarryMetadataLikeTheLister) {
  absl::StatusOr<v1::SearchResponse> r = FileSearcher(tree_.root()).Search(Request("big.bin"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->matches_size(), 1);
  EXPECT_EQ(r->matches(0).name(), "big.bin");
  EXPECT_EQ(r->matches(0).size(), 5000u);
  EXPECT_EQ(r->matches(0).type(), v1::FILE_TYPE_FILE);
  EXPECT_GT(r->scanned_entries(), 15u);
  EXPECT_EQ(r->skipped_directories(), 0u);
}

TEST_F(FileSearcherTest, SymlinksAreReportedNeverFollowed) {
  // docs/link_to_src -> ../src would duplicate src/, docs/escape -> /etc
  // would leave the root: neither is descended into.
  const std::vector<std::string> all = Find(Request("*"));
  for (const std::string& p : all) {
    EXPECT_EQ(p.rfind("docs/link_to_src/", 0), std::string::npos) << p;
    EXPECT_EQ(p.rfind("docs/escape/", 0), std::string::npos) << p;
  }
  absl::StatusOr<v1::SearchResponse> r = FileSearcher(tree_.root()).Search(Request("escape"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->matches_size(), 1);
  EXPECT_EQ(r->matches(0).symlink_target(), "/etc");
}

TEST_F(FileSearcherTest, TargetsThatLeaveTheRootAreWithheldWhenAsked) {
  tree_.Symlink("../../..", "include/deep/up");
  tree_.Symlink("../api.h", "include/deep/in");
  FileSearcherOptions options;
  options.redact_outside_targets = true;
  v1::SearchRequest request = Request("*");
  request.set_type(v1::FILE_TYPE_SYMLINK);
  absl::StatusOr<v1::SearchResponse> r = FileSearcher(tree_.root(), options).Search(request);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(Paths(r->matches()), (std::vector<std::string>{"docs/escape", "docs/link_to_src",
                                                           "include/deep/in", "include/deep/up"}));
  EXPECT_TRUE(r->matches(0).symlink_target_redacted());
  EXPECT_EQ(r->matches(0).symlink_target(), "");
  EXPECT_FALSE(r->matches(1).symlink_target_redacted());
  EXPECT_EQ(r->matches(1).symlink_target(), "../src");
  EXPECT_EQ(r->matches(2).symlink_target(), "../api.h");
  EXPECT_TRUE(r->matches(3).symlink_target_redacted());
  // A symlink's size is its target's length: withheld with it. (Size
  // filters take regular files only, so they cannot find it out either.)
  EXPECT_EQ(r->matches(0).size(), 0u);
  EXPECT_EQ(r->matches(3).size(), 0u);
  EXPECT_EQ(r->matches(1).size(), 6u);  // "../src", shown
  // The SDK's default reports every target.
  r = FileSearcher(tree_.root()).Search(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->matches(3).symlink_target(), "../../..");
  EXPECT_FALSE(r->matches(3).symlink_target_redacted());
  EXPECT_EQ(r->matches(3).size(), 8u);
}

// Walks "/" two levels down, where /proc (procfs) is another filesystem than
// "/" on every Linux system this runs on.
TEST(FileSearcherOneFileSystemTest, MountPointsAreEntriesButNotWalked) {
  struct stat root_st, proc_st;
  ASSERT_EQ(::stat("/", &root_st), 0);
  if (::stat("/proc/self", &proc_st) != 0 || ::stat("/proc", &proc_st) != 0 ||
      proc_st.st_dev == root_st.st_dev) {
    GTEST_SKIP() << "/proc is not a filesystem of its own here";
  }
  v1::SearchRequest request;
  request.set_pattern("cpuinfo");
  request.set_max_depth(2);
  FileSearcherOptions walks_mounts;
  FileSearcherOptions stays;
  stays.one_file_system = true;

  // Default (SDK): off, so /proc/cpuinfo is found.
  absl::StatusOr<v1::SearchResponse> r = FileSearcher("/", walks_mounts).Search(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Paths(r->matches()), ::testing::Contains("proc/cpuinfo"));
  EXPECT_EQ(r->other_filesystem_directories(), 0u);

  // The option; a request cannot turn it off (the operator's policy wins),
  // only on.
  r = FileSearcher("/", stays).Search(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Paths(r->matches()), ::testing::Not(::testing::Contains("proc/cpuinfo")));
  EXPECT_GE(r->other_filesystem_directories(), 1u);
  request.set_one_file_system(false);
  r = FileSearcher("/", stays).Search(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Paths(r->matches()), ::testing::Not(::testing::Contains("proc/cpuinfo")));
  request.set_one_file_system(true);
  r = FileSearcher("/", walks_mounts).Search(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Paths(r->matches()), ::testing::Not(::testing::Contains("proc/cpuinfo")));

  // The mount point itself is still an entry.
  request.set_pattern("proc");
  request.set_max_depth(1);
  r = FileSearcher("/", stays).Search(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Paths(r->matches()), ElementsAre("proc"));

  // A search that starts on the other filesystem stays on that one.
  request.set_pattern("cpuinfo");
  request.set_path("proc");
  r = FileSearcher("/", stays).Search(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Paths(r->matches()), ElementsAre("proc/cpuinfo"));
}

TEST_F(FileSearcherTest, SymlinkLoopsCannotLoop) {
  tree_.Symlink(".", "src/self");
  tree_.Symlink("..", "src/net/up");
  tree_.Symlink("loop2", "loop1");
  tree_.Symlink("loop1", "loop2");
  EXPECT_THAT(Find(Request("s*")),
              ElementsAre("src", "src/net/socket.cc", "src/net/socket.h", "src/self"));
}

TEST_F(FileSearcherTest, NamesThatAreNotUtf8AreMatchedAndCarriedExactly) {
  const std::string bad = "src/r\xe9sum\xe9.h";  // Latin-1 bytes
  tree_.File(bad);
  absl::StatusOr<v1::SearchResponse> r = FileSearcher(tree_.root()).Search(Request("r?sum?.h"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->matches_size(), 1);
  EXPECT_EQ(r->matches(0).raw_path(), bad);
  EXPECT_EQ(r->matches(0).path(), "src/r\\xe9sum\\xe9.h");
}

TEST_F(FileSearcherTest, SameResultsWithOneOrManyThreads) {
  for (int d = 0; d < 20; ++d) {
    const std::string dir = "wide" + std::to_string(d);
    tree_.Dir(dir);
    for (int f = 0; f < 30; ++f) tree_.File(dir + "/f" + std::to_string(f) + (f % 3 ? ".h" : ".c"));
  }
  const std::vector<std::string> one = Find(Request("*.h"), 1);
  EXPECT_EQ(one.size(), 4u + 20 * 20);
  EXPECT_TRUE(std::is_sorted(one.begin(), one.end()));
  for (int threads : {2, 3, 8}) EXPECT_EQ(Find(Request("*.h"), threads), one) << threads;
}

TEST_F(FileSearcherTest, MaxResultsTruncatesWithReason) {
  for (int i = 0; i < 50; ++i) tree_.File("src/gen" + std::to_string(i) + ".h");
  FileSearcher searcher(tree_.root());
  v1::SearchRequest r = Request("*.h");
  r.set_max_results(10);
  absl::StatusOr<v1::SearchResponse> response = searcher.Search(r);
  ASSERT_TRUE(response.ok());
  EXPECT_TRUE(response->truncated());
  EXPECT_EQ(response->truncation_reason(), v1::TRUNCATION_REASON_MAX_RESULTS);
  EXPECT_EQ(response->matches_size(), 10);
  const std::vector<std::string> paths = Paths(response->matches());
  EXPECT_TRUE(std::is_sorted(paths.begin(), paths.end()));
  // Exactly at the cap is not truncation.
  r.set_max_results(54);
  response = searcher.Search(r);
  ASSERT_TRUE(response.ok());
  EXPECT_FALSE(response->truncated());
  EXPECT_EQ(response->matches_size(), 54);
}

TEST_F(FileSearcherTest, ByteBudgetTruncatesWithItsOwnReason) {
  // 200 matches of about 330 serialized bytes each (a 200-byte name, in
  // path and name), under a 20,000-byte budget: the answer stops below it,
  // sorted, with every entry whole.
  tree_.Dir("many");
  for (int i = 0; i < 200; ++i) {
    tree_.File("many/" + std::string(190, 'x') + std::to_string(1000 + i) + ".dat");
  }
  FileSearcherOptions options;
  options.max_response_bytes = 20000;
  FileSearcher searcher(tree_.root(), options);
  v1::SearchRequest r = Request("*.dat");
  absl::StatusOr<v1::SearchResponse> response = searcher.Search(r);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(response->truncated());
  EXPECT_EQ(response->truncation_reason(), v1::TRUNCATION_REASON_MAX_BYTES);
  EXPECT_GT(response->matches_size(), 0);
  EXPECT_LT(response->matches_size(), 200);
  size_t matches_bytes = 0;
  for (const v1::FileEntry& e : response->matches()) matches_bytes += e.ByteSizeLong() + 3;
  EXPECT_LE(matches_bytes, options.max_response_bytes);
  // Nothing of the budget is wasted: one more entry would not have fitted.
  EXPECT_GT(matches_bytes + response->matches(0).ByteSizeLong() + 3, options.max_response_bytes);
  const std::vector<std::string> paths = Paths(response->matches());
  EXPECT_TRUE(std::is_sorted(paths.begin(), paths.end()));
  // max_results below what the budget holds: that cap is the reason.
  r.set_max_results(5);
  response = searcher.Search(r);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->truncation_reason(), v1::TRUNCATION_REASON_MAX_RESULTS);
  // The default budget (15 MiB) holds them all.
  r.clear_max_results();
  response = FileSearcher(tree_.root()).Search(r);
  ASSERT_TRUE(response.ok());
  EXPECT_FALSE(response->truncated());
  EXPECT_EQ(response->matches_size(), 200);
  EXPECT_EQ(kDefaultMaxResponseBytes, size_t{15} << 20);
}

// A clock that stands still for the first `kTicksBeforeDeadline` readings and
// then jumps an hour ahead, so the deadline passes mid-walk, deterministically.
std::atomic<int> clock_readings{0};
constexpr int kTicksBeforeDeadline = 4;
absl::Time SteppingClock() {
  const absl::Time start = absl::FromUnixSeconds(1000000);
  return clock_readings++ < kTicksBeforeDeadline ? start : start + absl::Hours(1);
}

TEST_F(FileSearcherTest, DeadlineMidWalkReturnsWhatWasFound) {
  clock_readings = 0;
  internal::SetSearchClockForTesting(&SteppingClock);
  FileSearcherOptions options;
  options.threads = 1;
  absl::StatusOr<v1::SearchResponse> r =
      FileSearcher(tree_.root(), options).Search(Request("*"), absl::FromUnixSeconds(1000001));
  internal::SetSearchClockForTesting(nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->truncated());
  EXPECT_EQ(r->truncation_reason(), v1::TRUNCATION_REASON_DEADLINE);
  EXPECT_GT(r->matches_size(), 0);
  EXPECT_LT(r->matches_size(), static_cast<int>(Find(Request("*")).size()));
}

TEST_F(FileSearcherTest, DeadlineAlreadyPassedIsDeadlineExceeded) {
  EXPECT_EQ(FileSearcher(tree_.root())
                .Search(Request("*"), absl::Now() - absl::Seconds(1))
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(FileSearcherTest, UnreadableDirectoriesAreSkippedAndCounted) {
  tree_.Dir("locked", 0);
  tree_.Dir("half", 0311);  // searchable, not listable, by its owner
  testing::ScopedEnforcePermissions enforce;
  // The dropped capabilities are this thread's: walk on it alone (the shared
  // pool's threads keep the process's credentials; see file_searcher.hpp).
  FileSearcherOptions options;
  options.threads = 1;
  absl::StatusOr<v1::SearchResponse> r = FileSearcher(tree_.root(), options).Search(Request("*.h"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->skipped_directories(), 2u);
  EXPECT_EQ(r->matches_size(), 4);
}

TEST_F(FileSearcherTest, ThousandLevelsDeepNeedsNoRecursion) {
  const std::string deepest = tree_.DeepChain("", "d", 1000, "bottom.txt");
  absl::StatusOr<v1::SearchResponse> r = FileSearcher(tree_.root()).Search(Request("bottom.txt"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->matches_size(), 1);
  EXPECT_EQ(r->matches(0).path(), deepest + "/bottom.txt");
}

TEST_F(FileSearcherTest, PathsLongerThanPathMaxAreWalked) {
  // 400 levels of 24-byte names: about 10,000 bytes, far past PATH_MAX.
  const std::string name(24, 'n');
  const std::string deepest = tree_.DeepChain("src", name, 400, "needle");
  ASSERT_GT(deepest.size(), 4096u);
  absl::StatusOr<v1::SearchResponse> r = FileSearcher(tree_.root()).Search(Request("needle"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->matches_size(), 1);
  EXPECT_EQ(r->matches(0).path(), deepest + "/needle");
  EXPECT_EQ(r->skipped_directories(), 0u);
}

TEST_F(FileSearcherTest, PortableWalkFindsTheSameAndNeverFollowsLinks) {
  tree_.DeepChain("include", std::string(24, 'p'), 300, "deep.h");
  tree_.Symlink("..", "src/net/up");
  const std::vector<std::string> with_openat2 = Find(Request("*"));
  internal::SetAutoResolverForTesting(internal::Resolver::kPortable);
  const std::vector<std::string> portable = Find(Request("*"));
  internal::SetAutoResolverForTesting(internal::Resolver::kAuto);
  EXPECT_EQ(portable, with_openat2);
  EXPECT_GT(portable.size(), 300u);
}

TEST_F(FileSearcherTest, InvalidRequestsAreInvalidArgument) {
  FileSearcher searcher(tree_.root());
  const auto code = [&](auto mutate) {
    v1::SearchRequest r;
    r.set_pattern("*");
    mutate(r);
    return searcher.Search(r).status().code();
  };
  using absl::StatusCode;
  EXPECT_EQ(code([](v1::SearchRequest&) {}), StatusCode::kOk);
  EXPECT_EQ(code([](v1::SearchRequest& r) { r.set_pattern(""); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](v1::SearchRequest& r) { r.set_max_depth(0); }), StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](v1::SearchRequest& r) { r.set_max_results(FileSearcher::kMaxResults + 1); }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](v1::SearchRequest& r) {
              r.set_min_size(10);
              r.set_max_size(9);
            }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](v1::SearchRequest& r) {
              r.set_syntax(v1::PATTERN_SYNTAX_REGEX);
              r.set_pattern("(");
            }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](v1::SearchRequest& r) { r.set_type(static_cast<v1::FileType>(77)); }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](v1::SearchRequest& r) { r.set_pattern(std::string(5000, 'x')); }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code([](v1::SearchRequest& r) { r.set_path("src/util.h"); }),
            StatusCode::kFailedPrecondition);
}

TEST_F(FileSearcherTest, ConcurrentSearchesAgree) {
  FileSearcher searcher(tree_.root());
  const std::vector<std::string> expected = Find(Request("*"));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(6, 0);
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        absl::StatusOr<v1::SearchResponse> r = searcher.Search(Request("*"));
        if (!r.ok() || Paths(r->matches()) != expected) ++mismatches[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace filemesh

// --- SearchStream ---------------------------------------------------------------

namespace filemesh {
namespace {

struct Streamed {
  std::vector<std::string> paths;  // in the order delivered
  size_t calls = 0;
  size_t largest_batch = 0;
  size_t empty_batches = 0;
  uint64_t last_matches_so_far = 0;
  std::vector<uint64_t> scanned;  // scanned_entries of each batch
  bool other_thread = false;
};

// Runs SearchStream, recording every batch.
absl::StatusOr<v1::SearchResponse> Stream(const FileSearcher& searcher,
                                          const v1::SearchRequest& request, Streamed* out,
                                          absl::Duration progress = absl::Milliseconds(100),
                                          size_t stop_after_calls = 0) {
  const std::thread::id caller = std::this_thread::get_id();
  return searcher.SearchStream(
      request,
      [&](SearchBatch& batch) {
        ++out->calls;
        out->other_thread |= std::this_thread::get_id() != caller;
        out->largest_batch = std::max(out->largest_batch, batch.matches.size());
        if (batch.matches.empty()) ++out->empty_batches;
        for (const v1::FileEntry& e : batch.matches) out->paths.push_back(ExactPath(e));
        out->last_matches_so_far = batch.matches_so_far;
        out->scanned.push_back(batch.scanned_entries);
        return stop_after_calls == 0 || out->calls < stop_after_calls;
      },
      absl::InfiniteFuture(), progress);
}

class FileSearcherStreamTest : public ::testing::Test {
 protected:
  // 40 directories of 250 files: 10,000 matches of "*.txt", more than the
  // default cap of one answer (1,000), and 40 directories that do not match.
  void SetUp() override {
    for (int d = 0; d < 40; ++d) {
      const std::string dir = "d" + std::to_string(d);
      tree_.Dir(dir);
      for (int f = 0; f < 250; ++f) tree_.File(dir + "/f" + std::to_string(f) + ".txt");
    }
  }

  v1::SearchRequest Txt() {
    v1::SearchRequest r;
    r.set_pattern("*.txt");
    return r;
  }

  testing::TestTree tree_;
};

TEST_F(FileSearcherStreamTest, StreamsTheSameSetAsTheSortedSearchOnTheCallersThread) {
  v1::SearchRequest sorted_request = Txt();
  sorted_request.set_max_results(FileSearcher::kMaxResults);
  absl::StatusOr<v1::SearchResponse> sorted = FileSearcher(tree_.root()).Search(sorted_request);
  ASSERT_TRUE(sorted.ok()) << sorted.status();
  ASSERT_EQ(sorted->matches_size(), 10000);
  const std::vector<std::string> expected = Paths(sorted->matches());
  for (const int threads : {1, 2, 0}) {
    SCOPED_TRACE(threads);
    FileSearcherOptions options;
    options.threads = threads;
    Streamed streamed;
    absl::StatusOr<v1::SearchResponse> summary =
        Stream(FileSearcher(tree_.root(), options), Txt(), &streamed);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_FALSE(streamed.other_thread);
    EXPECT_EQ(summary->matches_size(), 0);
    EXPECT_FALSE(summary->truncated());
    EXPECT_EQ(summary->scanned_entries(), sorted->scanned_entries());
    EXPECT_EQ(streamed.last_matches_so_far, 10000u);
    EXPECT_EQ(streamed.scanned.back(), sorted->scanned_entries());  // exact at the end
    EXPECT_TRUE(std::is_sorted(streamed.scanned.begin(), streamed.scanned.end()));
    EXPECT_GT(streamed.calls, 1u);  // in batches, not all at the end
    EXPECT_LE(streamed.largest_batch, 4096u + 256u * 16);
    std::vector<std::string> got = streamed.paths;
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expected);
  }
}

TEST_F(FileSearcherStreamTest, NoByteBudgetAndNoCapUnlessAsked) {
  FileSearcherOptions options;
  options.max_response_bytes = 20000;  // one answer would hold about 300 of them
  FileSearcher searcher(tree_.root(), options);
  Streamed all;
  absl::StatusOr<v1::SearchResponse> summary = Stream(searcher, Txt(), &all);
  ASSERT_TRUE(summary.ok());
  EXPECT_FALSE(summary->truncated());
  EXPECT_EQ(all.paths.size(), 10000u);

  v1::SearchRequest capped = Txt();
  capped.set_max_results(10);
  Streamed ten;
  summary = Stream(searcher, capped, &ten);
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->truncated());
  EXPECT_EQ(summary->truncation_reason(), v1::TRUNCATION_REASON_MAX_RESULTS);
  EXPECT_EQ(ten.paths.size(), 10u);

  // Above the one-answer ceiling is fine when streaming.
  capped.set_max_results(FileSearcher::kMaxResults + 1);
  Streamed big;
  EXPECT_TRUE(Stream(searcher, capped, &big).ok());
  EXPECT_EQ(big.paths.size(), 10000u);
}

TEST_F(FileSearcherStreamTest, ACallbackThatSaysStopEndsTheSearch) {
  FileSearcherOptions options;
  options.threads = 1;
  Streamed streamed;
  absl::StatusOr<v1::SearchResponse> summary =
      Stream(FileSearcher(tree_.root(), options), Txt(), &streamed, absl::Milliseconds(100), 1);
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kCancelled) << summary.status();
  EXPECT_EQ(streamed.calls, 1u);  // never called again
  EXPECT_LT(streamed.paths.size(), 10000u);
}

TEST_F(FileSearcherStreamTest, ProgressComesWhileNothingMatches) {
  // One walker, progress due at every look at the clock (each 1,024
  // entries): batches with no match carry a growing scan count.
  FileSearcherOptions options;
  options.threads = 1;
  v1::SearchRequest none;
  none.set_pattern("*.nothing");
  Streamed streamed;
  absl::StatusOr<v1::SearchResponse> summary =
      Stream(FileSearcher(tree_.root(), options), none, &streamed, absl::ZeroDuration());
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(streamed.paths.empty());
  EXPECT_GE(streamed.empty_batches, 10000u / 1024);
  EXPECT_TRUE(std::is_sorted(streamed.scanned.begin(), streamed.scanned.end()));
  EXPECT_EQ(streamed.scanned.back(), summary->scanned_entries());
  EXPECT_GT(streamed.scanned.front(), 0u);
}

TEST_F(FileSearcherStreamTest, PathsOnlyStreamsTheSamePathsAndTypesWithoutMetadata) {
  tree_.File("d0/big.txt", 5000);
  tree_.Dir("d0/sub.txt");
  tree_.Symlink("f0.txt", "d0/link.txt");
  tree_.Fifo("d0/pipe.txt");
  // Every match of the full stream, by path, as "type size mode link_target".
  const auto collect = [&](const FileSearcher& searcher, const v1::SearchRequest& request) {
    std::map<std::string, std::string> out;
    EXPECT_TRUE(searcher
                    .SearchStream(request,
                                  [&](SearchBatch& batch) {
                                    for (const v1::FileEntry& e : batch.matches) {
                                      out[ExactPath(e)] =
                                          absl::StrCat(e.type(), " ", e.size(), " ", e.mode(), " ",
                                                       e.has_modified(), " ", e.symlink_target());
                                    }
                                    return true;
                                  })
                    .ok());
    return out;
  };
  FileSearcherOptions options;
  const std::map<std::string, std::string> full = collect(FileSearcher(tree_.root()), Txt());
  options.stream_paths_only = true;
  const FileSearcher paths_only(tree_.root(), options);
  const std::map<std::string, std::string> bare = collect(paths_only, Txt());
  ASSERT_EQ(bare.size(), 10004u);
  ASSERT_EQ(full.size(), bare.size());
  for (const auto& [path, fields] : full) {
    SCOPED_TRACE(path);
    ASSERT_EQ(bare.count(path), 1u);
    // The same type, nothing else.
    EXPECT_EQ(bare.at(path), absl::StrCat(fields.substr(0, fields.find(' ')), " 0 0 0 "));
  }
  EXPECT_EQ(full.at("d0/link.txt").substr(0, 2), "3 ");  // FILE_TYPE_SYMLINK
  EXPECT_NE(full.at("d0/link.txt").find("f0.txt"), std::string::npos);

  // A size bound needs the size: those matches are stat'ed.
  v1::SearchRequest big = Txt();
  big.set_min_size(1000);
  const std::map<std::string, std::string> sized = collect(paths_only, big);
  ASSERT_EQ(sized.size(), 1u);
  EXPECT_EQ(sized.begin()->first, "d0/big.txt");
  EXPECT_EQ(sized.begin()->second.substr(0, 7), "1 5000 ");

  // Search (not streamed) ignores the option.
  v1::SearchRequest one = Txt();
  one.set_max_results(FileSearcher::kMaxResults);
  absl::StatusOr<v1::SearchResponse> sorted = paths_only.Search(one);
  ASSERT_TRUE(sorted.ok()) << sorted.status();
  ASSERT_EQ(sorted->matches_size(), 10004);
  for (const v1::FileEntry& e : sorted->matches()) ASSERT_TRUE(e.has_modified()) << e.path();
}

TEST_F(FileSearcherStreamTest, BadRequestsFailBeforeAnyBatch) {
  FileSearcher searcher(tree_.root());
  v1::SearchRequest bad = Txt();
  bad.set_max_depth(0);
  Streamed streamed;
  EXPECT_EQ(Stream(searcher, bad, &streamed).status().code(), absl::StatusCode::kInvalidArgument);
  bad = Txt();
  bad.set_path("../x");
  EXPECT_EQ(Stream(searcher, bad, &streamed).status().code(), absl::StatusCode::kInvalidArgument);
  bad.set_path("missing");
  EXPECT_EQ(Stream(searcher, bad, &streamed).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(streamed.calls, 0u);
  EXPECT_EQ(searcher.SearchStream(Txt(), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Running out of descriptors ------------------------------------------------

std::vector<internal::Resolver> BothResolvers() {
  std::vector<internal::Resolver> resolvers = {internal::Resolver::kPortable};
  if (internal::Openat2Available()) resolvers.push_back(internal::Resolver::kOpenat2);
  return resolvers;
}

// What a search returns with `spare` descriptors left, on each resolver. The
// checks run once the limit is lifted: a sanitizer's runtime may need a
// descriptor of its own to check them.
struct StarvedSearch {
  absl::StatusOr<v1::SearchResponse> search;
  absl::StatusOr<v1::SearchResponse> stream;
  Streamed streamed;
};
StarvedSearch SearchWithSpareDescriptors(const FileSearcher& searcher,
                                         const v1::SearchRequest& request,
                                         internal::Resolver resolver, int spare) {
  internal::SetAutoResolverForTesting(resolver);
  StarvedSearch out;
  {
    testing::ScopedDescriptorLimit limit(spare);
    out.search = searcher.Search(request);
    out.stream = Stream(searcher, request, &out.streamed);
  }
  internal::SetAutoResolverForTesting(internal::Resolver::kAuto);
  return out;
}

TEST_F(FileSearcherTest, OutOfDescriptorsAtTheStartIsResourceExhaustedOnBothResolvers) {
  if (testing::kSanitizerNeedsDescriptors) {
    GTEST_SKIP() << "the sanitizer runtime needs descriptors of its own for its checks";
  }
  FileSearcherOptions options;
  options.threads = 1;
  const FileSearcher searcher(tree_.root(), options);
  for (internal::Resolver resolver : BothResolvers()) {
    const StarvedSearch r = SearchWithSpareDescriptors(searcher, Request("*"), resolver, 0);
    EXPECT_EQ(r.search.status().code(), absl::StatusCode::kResourceExhausted) << r.search.status();
    EXPECT_THAT(r.search.status().message(), ::testing::HasSubstr("RLIMIT_NOFILE"));
    EXPECT_EQ(r.stream.status().code(), absl::StatusCode::kResourceExhausted) << r.stream.status();
    EXPECT_EQ(r.streamed.calls, 0u);
  }
}

// Room for the start directory only: the walk begins, then cannot open the
// first subdirectory. That fails the search; it is not a skipped directory.
TEST_F(FileSearcherTest, OutOfDescriptorsMidWalkFailsTheSearchInsteadOfSkipping) {
  if (testing::kSanitizerNeedsDescriptors) {
    GTEST_SKIP() << "the sanitizer runtime needs descriptors of its own for its checks";
  }
  for (int threads : {1, 0}) {  // one walker, then the whole pool
    SCOPED_TRACE(threads);
    FileSearcherOptions options;
    options.threads = threads;
    const FileSearcher searcher(tree_.root(), options);
    for (internal::Resolver resolver : BothResolvers()) {
      const StarvedSearch r = SearchWithSpareDescriptors(searcher, Request("*"), resolver, 1);
      ASSERT_FALSE(r.search.ok()) << "skipped_directories: " << r.search->skipped_directories();
      EXPECT_EQ(r.search.status().code(), absl::StatusCode::kResourceExhausted)
          << r.search.status();
      EXPECT_THAT(r.search.status().message(), ::testing::HasSubstr("RLIMIT_NOFILE"));
      EXPECT_EQ(r.stream.status().code(), absl::StatusCode::kResourceExhausted)
          << r.stream.status();
    }
  }
}

TEST_F(FileSearcherTest, AScopeKeepsTheSearchAndItsMatchesInsideIt) {
  v1::SearchRequest request = Request("*.h");
  request.set_scope("src");
  request.set_path("src");
  EXPECT_THAT(Find(request), ElementsAre("src/net/socket.h", "src/util.h"));
  request.set_path("src/net");
  EXPECT_THAT(Find(request), ElementsAre("src/net/socket.h"));
  const FileSearcher searcher(tree_.root());
  for (const char* path : {"", "include", "docs/link_to_src", "src/.."}) {
    request.set_path(path);
    EXPECT_EQ(searcher.Search(request).status().code(), absl::StatusCode::kPermissionDenied)
        << path;
  }
  // docs/link_to_src leads into src: with scope docs it leads out.
  request.set_scope("docs");
  request.set_path("docs/link_to_src");
  EXPECT_EQ(searcher.Search(request).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(FileSearcherRedactionTest, JudgedFromTheStartDirectorysRealPlace) {
  testing::TestTree tree;
  tree.Dir("a");
  tree.Symlink("..", "a/up");
  tree.Symlink("../secret", "out");
  FileSearcherOptions options;
  options.redact_outside_targets = true;
  const FileSearcher searcher(tree.root(), options);
  for (const char* path : {"", "a/up"}) {
    SCOPED_TRACE(path);
    v1::SearchRequest request;
    request.set_pattern("out");
    request.set_path(path);
    request.set_max_depth(1);
    absl::StatusOr<v1::SearchResponse> r = searcher.Search(request);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->matches_size(), 1);
    EXPECT_TRUE(r->matches(0).symlink_target_redacted());
    EXPECT_EQ(r->matches(0).symlink_target(), "");
  }
}

}  // namespace
}  // namespace filemesh
