#include "filemesh/file_index.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "filemesh/file_searcher.hpp"
#include "fs/index_snapshot.h"
#include "fs/index_testing.h"
#include "fs/name_tree.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_tree.h"
#include "wait_for.h"

namespace filemesh {
namespace {

using internal::NameTree;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// NameTree

TEST(NameTreeTest, AddsRemovesAndNamesPaths) {
  NameTree tree;
  const NameTree::Id a = tree.Add(NameTree::kRoot, "a", DT_DIR);
  const NameTree::Id b = tree.Add(a, "b", DT_DIR);
  const NameTree::Id f = tree.Add(b, "f\xff.txt", DT_REG);
  const NameTree::Id g = tree.Add(NameTree::kRoot, "g", DT_LNK);
  EXPECT_EQ(tree.size(), 5u);
  EXPECT_EQ(tree.directories(), 3u);
  std::string path;
  ASSERT_TRUE(tree.AppendPath(f, NameTree::kRoot, &path));
  EXPECT_EQ(path, "a/b/f\xff.txt");
  path.clear();
  ASSERT_TRUE(tree.AppendPath(f, a, &path));
  EXPECT_EQ(path, "b/f\xff.txt");
  path.clear();
  EXPECT_FALSE(tree.AppendPath(a, b, &path));
  EXPECT_EQ(tree.Child(b, "f\xff.txt"), f);
  EXPECT_EQ(tree.Child(b, "f"), NameTree::kNone);

  tree.SetIdentity(b, 7, 42);
  EXPECT_EQ(tree.FindDirectory(7, 42), b);
  std::vector<NameTree::Id> gone;
  tree.Remove(a, [&](NameTree::Id dir) { gone.push_back(dir); });
  EXPECT_THAT(gone, ::testing::UnorderedElementsAre(a, b));
  EXPECT_EQ(tree.FindDirectory(7, 42), NameTree::kNone);
  EXPECT_EQ(tree.size(), 2u);
  EXPECT_FALSE(tree.valid(f));
  EXPECT_TRUE(tree.valid(g));
  EXPECT_THAT(tree.children(NameTree::kRoot), ::testing::ElementsAre(g));
  // Removed ids are reused.
  const NameTree::Id h = tree.Add(NameTree::kRoot, "h", DT_REG);
  EXPECT_LT(h, tree.capacity());
  EXPECT_EQ(tree.name(h), "h");
}

TEST(NameTreeTest, CompactsNamesOfRemovedEntries) {
  NameTree tree;
  const std::string long_name(200, 'x');
  std::vector<NameTree::Id> dirs;
  for (int i = 0; i < 200; ++i) {
    const NameTree::Id d = tree.Add(NameTree::kRoot, absl::StrCat("d", i), DT_DIR);
    dirs.push_back(d);
    for (int j = 0; j < 100; ++j) tree.Add(d, absl::StrCat(long_name, j), DT_REG);
  }
  const size_t before = tree.name_bytes();
  // Removing 190 of the 200 directories leaves most of the arena dead; it is
  // rewritten (at most 1 MiB of removed names wait for the next time), and
  // every surviving name still reads right.
  for (int i = 0; i < 190; ++i) tree.Remove(dirs[i]);
  EXPECT_LT(tree.name_bytes(), before / 3);
  for (int i = 190; i < 200; ++i) {
    EXPECT_EQ(tree.name(dirs[i]), absl::StrCat("d", i));
    EXPECT_EQ(tree.Child(dirs[i], absl::StrCat(long_name, 99)) != NameTree::kNone, true);
  }
}

TEST(NameTreeTest, KeepsAttributesUntilTheNameIsReused) {
  NameTree tree;
  const NameTree::Id f = tree.Add(NameTree::kRoot, "f", DT_REG);
  EXPECT_FALSE(tree.attributes(f).known());  // until read
  struct stat st {};
  st.st_mode = S_IFREG | 0640;
  st.st_size = 123;
  st.st_nlink = 1;
  st.st_ino = 77;
  st.st_mtim = {-5, 250};  // before the epoch: seconds round down
  const NameTree::Attributes a = NameTree::Attributes::Of(st);
  tree.set_attributes(f, a);
  const struct stat back = tree.attributes(f).ToStat();
  EXPECT_EQ(back.st_mode, st.st_mode);
  EXPECT_EQ(back.st_size, 123);
  EXPECT_EQ(back.st_mtim.tv_sec, -5);
  EXPECT_EQ(back.st_mtim.tv_nsec, 250);
  EXPECT_FALSE(tree.attributes(f).shared());
  // A time 64 bits of nanoseconds cannot hold is not kept: read each time.
  st.st_mtim.tv_sec = std::numeric_limits<int64_t>::max() / 2;
  EXPECT_FALSE(NameTree::Attributes::Of(st).known());
  // Another name of inode 77 appeared: f is marked, other entries are not.
  const NameTree::Id g = tree.Add(NameTree::kRoot, "g", DT_REG);
  st.st_ino = 78;
  st.st_mtim = {1, 0};
  tree.set_attributes(g, NameTree::Attributes::Of(st));
  tree.MarkShared({NameTree::Attributes::HashInode(77)});
  EXPECT_TRUE(tree.attributes(f).shared());
  EXPECT_EQ(tree.attributes(f).st_mode(), S_IFREG | 0640u);
  EXPECT_FALSE(tree.attributes(g).shared());
  // With links at the read, shared at once; directories never.
  st.st_nlink = 2;
  EXPECT_TRUE(NameTree::Attributes::Of(st).shared());
  st.st_mode = S_IFDIR | 0755;
  EXPECT_FALSE(NameTree::Attributes::Of(st).shared());
  // A removed entry's id, reused, starts unknown again; so does every entry
  // after ForgetAttributes.
  tree.Remove(f);
  const NameTree::Id h = tree.Add(NameTree::kRoot, "h", DT_REG);
  EXPECT_EQ(h, f);
  EXPECT_FALSE(tree.attributes(h).known());
  tree.ForgetAttributes();
  EXPECT_FALSE(tree.attributes(g).known());
}

// ---------------------------------------------------------------------------
// FileIndex against FileSearcher

std::string Describe(v1::SearchResponse response) {
  response.clear_index_as_of();
  return response.DebugString();
}

// The walk's answer and the index's, compared whole (index_as_of aside),
// scanned_entries included: the index looks at the entries the walk reads.
void ExpectSameAnswer(const FileIndex& index, const FileSearcher& walker,
                      const v1::SearchRequest& request) {
  SCOPED_TRACE(request.ShortDebugString());
  absl::StatusOr<v1::SearchResponse> walked = walker.Search(request);
  absl::StatusOr<v1::SearchResponse> indexed = index.Search(request);
  ASSERT_EQ(walked.status(), indexed.status());
  if (!walked.ok()) return;
  EXPECT_TRUE(indexed->has_index_as_of());
  const std::string walk_text = Describe(*walked);
  const std::string index_text = Describe(*indexed);
  if (walk_text != index_text) {
    // Where they part, not all of both (answers can be long).
    size_t at = 0;
    while (at < walk_text.size() && at < index_text.size() && walk_text[at] == index_text[at]) ++at;
    const size_t from = at < 300 ? 0 : at - 300;
    ADD_FAILURE() << "the index answers otherwise than the walk, from byte " << at << "\nwalk:  ..."
                  << walk_text.substr(from, 600) << "\nindex: ..." << index_text.substr(from, 600);
  }
}

v1::SearchRequest Glob(const std::string& pattern) {
  v1::SearchRequest request;
  request.set_pattern(pattern);
  request.set_syntax(v1::PATTERN_SYNTAX_GLOB);
  return request;
}

std::string WatchName(const ::testing::TestParamInfo<IndexWatch>& watch) {
  return watch.param == IndexWatch::kInotify ? "inotify" : "fanotify";
}

class FileIndexTest : public ::testing::TestWithParam<IndexWatch> {
 protected:
  void SetUp() override {
    tree_.File("README.md", 10);
    tree_.File(".env");
    tree_.Dir("src");
    tree_.File("src/main.cc", 100);
    tree_.File("src/util.h", 30);
    tree_.Dir("src/.cache");
    tree_.File("src/.cache/tmp.h");
    tree_.Dir("src/net");
    tree_.File("src/net/socket.h", 50);
    tree_.File("src/net/big.bin", 5000);
    tree_.Dir("include");
    tree_.Dir("include/deep");
    tree_.File("include/deep/est.h");
    tree_.File("include/bad\xff\xfe.h");
    tree_.Dir("docs");
    tree_.Symlink("../src", "docs/link_to_src");
    tree_.Symlink("/etc", "docs/escape");
    tree_.Fifo("docs/pipe");
  }

  // Starts an index of the tree and waits until it is built.
  std::unique_ptr<FileIndex> StartIndex(FileIndexOptions options = {}) {
    options.watch = GetParam();
    auto index = std::make_unique<FileIndex>(tree_.root(), options);
    absl::Status started = index->Start();
    if (GetParam() == IndexWatch::kFanotify && absl::IsPermissionDenied(started)) return nullptr;
    EXPECT_TRUE(started.ok()) << started;
    EXPECT_TRUE(index->WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
    return index;
  }

  testing::TestTree tree_;
};

#define START_INDEX_OR_SKIP(index, options)               \
  std::unique_ptr<FileIndex> index = StartIndex(options); \
  if (index == nullptr) GTEST_SKIP() << "fanotify is not allowed to this process"

TEST_P(FileIndexTest, AnswersAsTheWalkDoes) {
  START_INDEX_OR_SKIP(index, {});
  FileSearcher walker(tree_.root());
  const FileIndexStats stats = index->stats();
  EXPECT_TRUE(stats.ready);
  EXPECT_EQ(stats.watch_mode, GetParam() == IndexWatch::kFanotify ? "fanotify" : "inotify");
  EXPECT_EQ(stats.entries, 19u);  // the root and 18 entries

  std::vector<v1::SearchRequest> requests;
  for (const char* pattern : {"*", "*.h", "*.H", "s*", "*o*", "src/*", "**/*.h", "*\xff*"}) {
    requests.push_back(Glob(pattern));
  }
  v1::SearchRequest r = Glob("*.H");
  r.set_case_insensitive(true);
  requests.push_back(r);
  r = Glob("*");
  r.set_include_hidden(true);
  requests.push_back(r);
  r.set_max_depth(1);
  requests.push_back(r);
  r = Glob("*");
  r.set_type(v1::FILE_TYPE_DIRECTORY);
  requests.push_back(r);
  r.set_type(v1::FILE_TYPE_SYMLINK);
  requests.push_back(r);
  r.set_type(v1::FILE_TYPE_OTHER);
  requests.push_back(r);
  r = Glob("*");
  r.set_min_size(40);
  r.set_max_size(200);
  requests.push_back(r);
  r = Glob("*.h");
  r.set_path("src");
  requests.push_back(r);
  r.set_path("docs/link_to_src");  // a start through a link, beneath the root
  requests.push_back(r);
  r.set_path("docs/escape");  // leaves the root: PermissionDenied
  requests.push_back(r);
  r.set_path("nope");
  requests.push_back(r);
  r = Glob("*.h");
  r.set_scope("include");
  r.set_path("include/deep");
  requests.push_back(r);
  r.set_path("src");  // outside the scope
  requests.push_back(r);
  r = Glob("[");  // a bad pattern
  requests.push_back(r);
  r = Glob("*");
  r.set_max_results(3);  // capped: only the reason is compared below
  v1::SearchRequest regex;
  regex.set_pattern("^(main|util)\\.(cc|h)$");
  regex.set_syntax(v1::PATTERN_SYNTAX_REGEX);
  requests.push_back(regex);
  v1::SearchRequest substring;
  substring.set_pattern("ock");
  substring.set_syntax(v1::PATTERN_SYNTAX_SUBSTRING);
  requests.push_back(substring);
  for (const v1::SearchRequest& request : requests) ExpectSameAnswer(*index, walker, request);

  absl::StatusOr<v1::SearchResponse> capped = index->Search(r);
  ASSERT_TRUE(capped.ok()) << capped.status();
  EXPECT_TRUE(capped->truncated());
  EXPECT_EQ(capped->truncation_reason(), v1::TRUNCATION_REASON_MAX_RESULTS);
  EXPECT_EQ(capped->matches_size(), 3);
  EXPECT_EQ(index->stats().searches_walked, 0u);
}

TEST_P(FileIndexTest, RedactsTargetsAsTheWalkDoes) {
  FileIndexOptions options;
  options.search.redact_outside_targets = true;
  START_INDEX_OR_SKIP(index, options);
  FileSearcher walker(tree_.root(), options.search);
  v1::SearchRequest request = Glob("*");
  request.set_type(v1::FILE_TYPE_SYMLINK);
  ExpectSameAnswer(*index, walker, request);
  absl::StatusOr<v1::SearchResponse> answer = index->Search(request);
  ASSERT_TRUE(answer.ok());
  ASSERT_EQ(answer->matches_size(), 2);
  EXPECT_TRUE(answer->matches(0).symlink_target_redacted());  // docs/escape -> /etc
}

TEST_P(FileIndexTest, FollowsEachKindOfChange) {
  START_INDEX_OR_SKIP(index, {});
  FileSearcher walker(tree_.root());
  const auto expect_current = [&](const char* step) {
    SCOPED_TRACE(step);
    ASSERT_TRUE(index->WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
    v1::SearchRequest all = Glob("*");
    all.set_include_hidden(true);
    ExpectSameAnswer(*index, walker, all);
  };
  tree_.File("src/new.h");
  expect_current("create");
  tree_.Remove("src/util.h");
  expect_current("delete");
  ASSERT_EQ(::rename(tree_.Abs("src/net").c_str(), tree_.Abs("include/deep/net").c_str()), 0);
  expect_current("rename a directory across directories");
  tree_.Remove("README.md");
  tree_.Dir("README.md");
  tree_.File("README.md/inside");
  expect_current("a file replaced by a directory");
  tree_.Chmod("include/deep", 0);
  expect_current("chmod 000");
  tree_.Chmod("include/deep", 0755);
  tree_.Symlink("../../etc", "include/up");
  expect_current("symlink");
  tree_.DeepChain("docs", "d", 40, "leaf.h");
  expect_current("a deep chain");
  ASSERT_EQ(::rename(tree_.Abs("docs").c_str(), tree_.Abs("src/.cache/docs").c_str()), 0);
  expect_current("a deep chain moved below a hidden directory");
  const FileIndexStats stats = index->stats();
  EXPECT_GT(stats.events, 0u);
  EXPECT_GT(stats.directories_refreshed, 0u);
  // Reports alone (fanotify's queue may overflow with other writers of the
  // filesystem: see FileIndexPropertyTest).
  if (GetParam() == IndexWatch::kInotify) {
    EXPECT_EQ(stats.overflows, 0u);
  }
}

TEST_P(FileIndexTest, ALostReportMeansARescan) {
  START_INDEX_OR_SKIP(index, {});
  FileSearcher walker(tree_.root());
  // The kernel queues 16,384 reports by default (fs.inotify.max_queued_events,
  // fanotify's own): twice that many changes while the index does not read.
  tree_.Dir("many");  // watched (inotify) before the changes in it
  ASSERT_TRUE(index->WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
  internal::PauseIndexFollowingForTesting(true);
  for (int i = 0; i < 20000; ++i) tree_.File(absl::StrCat("many/f", i, ".h"));
  for (int i = 0; i < 20000; i += 2) tree_.Remove(absl::StrCat("many/f", i, ".h"));
  internal::PauseIndexFollowingForTesting(false);
  ASSERT_TRUE(index->WaitUntilCurrent(absl::Now() + absl::Seconds(60)));
  const FileIndexStats stats = index->stats();
  EXPECT_GE(stats.overflows, 1u);
  EXPECT_GE(stats.rescans, 1u);
  v1::SearchRequest request = Glob("f1*.h");
  request.set_max_results(100000);
  ExpectSameAnswer(*index, walker, request);
}

TEST_P(FileIndexTest, TooManyEntriesMeansTheWalk) {
  FileIndexOptions options;
  options.max_entries = 10;
  options.watch = GetParam();
  FileIndex index(tree_.root(), options);
  absl::Status started = index.Start();
  if (GetParam() == IndexWatch::kFanotify && absl::IsPermissionDenied(started)) GTEST_SKIP();
  ASSERT_TRUE(started.ok()) << started;
  ASSERT_TRUE(testing::WaitFor([&] { return !index.status().ok(); }, absl::Seconds(30)));
  EXPECT_TRUE(absl::IsResourceExhausted(index.status())) << index.status();
  EXPECT_THAT(index.status().message(), HasSubstr("more than 10 entries"));
  EXPECT_FALSE(index.WaitUntilCurrent(absl::Now() + absl::Seconds(1)));
  absl::StatusOr<v1::SearchResponse> answer = index.Search(Glob("*.h"));
  ASSERT_TRUE(answer.ok());
  EXPECT_FALSE(answer->has_index_as_of());  // walked
  EXPECT_EQ(answer->matches_size(), 4);
}

TEST_P(FileIndexTest, ASizeBoundIsAnsweredFromTheSizesKept) {
  tree_.Dir("many");
  for (int i = 0; i < 11; ++i) tree_.File(absl::StrCat("many/f", i));
  tree_.File("many/big", 100);
  FileIndexOptions options;
  options.max_sized_candidates = 10;
  START_INDEX_OR_SKIP(index, options);
  ASSERT_TRUE(index->WaitUntilAttributesKept(absl::Now() + absl::Seconds(30)));
  EXPECT_TRUE(index->stats().attributes_ready);
  FileSearcher walker(tree_.root());
  // 12 names match, but the sizes kept leave one candidate: the index
  // answers, as the walk would.
  v1::SearchRequest request = Glob("*");
  request.set_path("many");
  request.set_min_size(1);
  ExpectSameAnswer(*index, walker, request);
  // Each kind of change to an attribute is followed: a write, a truncation,
  // a chmod, a new time, a file replaced by another of the same name.
  std::ofstream(tree_.root() + "/many/f3", std::ios::app) << "grown";
  ASSERT_EQ(::truncate((tree_.root() + "/many/big").c_str(), 7), 0);
  tree_.Chmod("many/f4", 0600);
  tree_.SetMtime("many/f5", 1234567890);
  tree_.File("many/other", 9);
  ASSERT_EQ(::rename((tree_.root() + "/many/other").c_str(), (tree_.root() + "/many/f6").c_str()),
            0);
  ASSERT_TRUE(index->WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
  absl::StatusOr<v1::SearchResponse> answer = index->Search(request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_TRUE(answer->has_index_as_of());
  EXPECT_EQ(answer->matches_size(), 3);  // f3, big, f6
  ExpectSameAnswer(*index, walker, request);
  request.clear_min_size();
  ExpectSameAnswer(*index, walker, request);
}

TEST_P(FileIndexTest, AFileLinkedIntoANewDirectoryIsReadAtEachAnswer) {
  tree_.Dir("old");
  tree_.File("old/a", 10);
  START_INDEX_OR_SKIP(index, {});
  ASSERT_TRUE(index->WaitUntilAttributesKept(absl::Now() + absl::Seconds(30)));
  FileSearcher walker(tree_.root());
  v1::SearchRequest all = Glob("*");
  ExpectSameAnswer(*index, walker, all);  // old/a's size kept, with one link
  // While the index reads no report, a new directory gets a second name of
  // old/a: the index meets it in the new directory's first reading, and the
  // only report of it is the directory's.
  internal::PauseIndexFollowingForTesting(true);
  tree_.Dir("new");
  ASSERT_EQ(::link((tree_.root() + "/old/a").c_str(), (tree_.root() + "/new/b").c_str()), 0);
  internal::PauseIndexFollowingForTesting(false);
  ASSERT_TRUE(index->WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
  ASSERT_TRUE(index->WaitUntilAttributesKept(absl::Now() + absl::Seconds(30)));
  // Written through the new name: reported there only; old/a must not be
  // answered with the size kept before the link.
  std::ofstream(tree_.root() + "/new/b", std::ios::app) << "more bytes";
  ASSERT_TRUE(index->WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
  ExpectSameAnswer(*index, walker, all);
}

TEST_P(FileIndexTest, ASizeBoundOverManyUnknownSizesIsLeftToTheWalk) {
  tree_.Dir("many");
  for (int i = 0; i < 11; ++i) tree_.File(absl::StrCat("many/f", i));
  FileIndexOptions options;
  options.max_sized_candidates = 10;
  options.watch = GetParam();
  options.follow = false;  // sizes are never read: searches read them
  auto index = std::make_unique<FileIndex>(tree_.root(), options);
  ASSERT_TRUE(index->Start().ok());
  ASSERT_TRUE(index->WaitUntilReady(absl::Now() + absl::Seconds(30)));
  EXPECT_FALSE(index->WaitUntilAttributesKept(absl::Now() + absl::Seconds(1)));
  EXPECT_FALSE(index->stats().attributes_ready);
  v1::SearchRequest request = Glob("*");
  request.set_path("many");
  request.set_min_size(1);  // none has a byte: 11 candidates, no match
  absl::StatusOr<v1::SearchResponse> answer = index->Search(request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_FALSE(answer->has_index_as_of());  // walked
  EXPECT_EQ(answer->matches_size(), 0);
  request.set_path("src");  // few candidates: the index answers
  answer = index->Search(request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_TRUE(answer->has_index_as_of());
  EXPECT_EQ(answer->matches_size(), 4);
}

TEST_P(FileIndexTest, SearchesWalkUntilStarted) {
  FileIndex index(tree_.root());
  absl::StatusOr<v1::SearchResponse> answer = index.Search(Glob("*.h"));
  ASSERT_TRUE(answer.ok());
  EXPECT_FALSE(answer->has_index_as_of());
  EXPECT_EQ(index.stats().searches_walked, 1u);
  EXPECT_FALSE(index.WaitUntilCurrent(absl::Now()));
}

INSTANTIATE_TEST_SUITE_P(Watch, FileIndexTest,
                         ::testing::Values(IndexWatch::kInotify, IndexWatch::kFanotify), WatchName);

TEST_P(FileIndexTest, AModeChangeDecidesWhatCanBeReadBelow) {
  // As the process's user (root loses its capabilities here), on one thread
  // (pool threads keep them): a directory's modes decide what the walk
  // reads, and the index must follow each change of them.
  testing::ScopedEnforcePermissions enforce;
  FileIndexOptions options;
  options.search.threads = 1;
  START_INDEX_OR_SKIP(index, options);
  FileSearcher walker(tree_.root(), options.search);
  v1::SearchRequest all = Glob("*");
  all.set_include_hidden(true);
  const auto expect_current = [&](const char* step) {
    SCOPED_TRACE(step);
    ASSERT_TRUE(index->WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
    ExpectSameAnswer(*index, walker, all);
  };
  tree_.Chmod("src", 0644);  // listable, but nothing in it can be opened
  expect_current("no search permission");
  tree_.Chmod("src", 0);
  expect_current("no permission at all");
  tree_.Chmod("src", 0755);
  expect_current("all back");
  tree_.Chmod("include", 0311);  // searchable, not listable
  expect_current("no read permission");
  tree_.Chmod("include", 0755);
  expect_current("all back again");
}

TEST(FileIndexInotifyTest, UnwatchedDirectoriesAreReadAtEachVerification) {
  testing::TestTree tree;
  for (int i = 0; i < 5; ++i) tree.Dir(absl::StrCat("d", i));
  FileIndexOptions options;
  options.watch = IndexWatch::kInotify;
  options.max_watches = 2;
  options.verify_interval = absl::Milliseconds(20);
  FileIndex index(tree.root(), options);
  ASSERT_TRUE(index.Start().ok());
  ASSERT_TRUE(index.WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
  EXPECT_EQ(index.stats().unwatched_directories, 4u);  // of 6: the root and one more watched
  for (int i = 0; i < 5; ++i) tree.File(absl::StrCat("d", i, "/x.h"));
  const auto five = [&] {
    absl::StatusOr<v1::SearchResponse> answer = index.Search(Glob("x.h"));
    return answer.ok() && answer->matches_size() == 5;
  };
  EXPECT_TRUE(testing::WaitFor(five, absl::Seconds(30)));
  EXPECT_GE(index.stats().verify_repairs, 1u);
}

// ---------------------------------------------------------------------------
// Snapshots

TEST(IndexSnapshotTest, RoundTripsATreeAndRefusesDamage) {
  NameTree tree;
  tree.SetIdentity(NameTree::kRoot, 1, 2);
  const NameTree::Id a = tree.Add(NameTree::kRoot, "a", DT_DIR);
  tree.SetIdentity(a, 1, 3);
  tree.set_entry_inode(a, 3);
  tree.Add(a, "x\xff.h", DT_REG);
  const NameTree::Id locked = tree.Add(a, "locked", DT_DIR);
  tree.set_flags(locked, NameTree::kUnreadable);
  tree.Add(NameTree::kRoot, "l", DT_LNK);
  internal::SnapshotInfo info;
  info.root_device = 1;
  info.root_inode = 2;
  info.one_file_system = true;
  info.as_of = absl::FromUnixSeconds(1700000000);
  const std::string bytes = internal::EncodeSnapshot(tree, info);

  NameTree loaded;
  absl::StatusOr<internal::SnapshotInfo> read = internal::DecodeSnapshot(bytes, &loaded);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->entries, 4u);
  EXPECT_EQ(read->as_of, info.as_of);
  EXPECT_TRUE(read->one_file_system);
  EXPECT_EQ(loaded.size(), tree.size());
  const NameTree::Id la = loaded.FindDirectory(1, 3);
  ASSERT_NE(la, NameTree::kNone);
  EXPECT_EQ(loaded.entry_inode(la), 3u);
  EXPECT_NE(loaded.Child(la, "x\xff.h"), NameTree::kNone);
  EXPECT_EQ(loaded.flags(loaded.Child(la, "locked")), NameTree::kUnreadable);
  EXPECT_EQ(loaded.type(loaded.Child(NameTree::kRoot, "l")), DT_LNK);

  // Every byte flipped, and every length cut short, is refused whole.
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    NameTree ignored;
    EXPECT_TRUE(absl::IsDataLoss(internal::DecodeSnapshot(bad, &ignored).status())) << i;
  }
  for (size_t n = 0; n < bytes.size(); ++n) {
    NameTree ignored;
    EXPECT_TRUE(absl::IsDataLoss(internal::DecodeSnapshot(bytes.substr(0, n), &ignored).status()))
        << n;
  }
}

class FileIndexSnapshotTest : public ::testing::Test {
 protected:
  FileIndexSnapshotTest() {
    tree_.Dir("src");
    tree_.File("src/main.cc", 10);
    tree_.Dir("src/deep");
    tree_.File("src/deep/x.h");
    tree_.File("README.md");
  }

  FileIndexOptions Options() const {
    FileIndexOptions options;
    options.watch = IndexWatch::kInotify;
    options.snapshot_dir = dir_.root();
    return options;
  }

  std::string SnapshotPath() const { return dir_.Abs(internal::kSnapshotName); }

  void ExpectSameAsTheWalk(const FileIndex& index) {
    ASSERT_TRUE(index.WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
    FileSearcher walker(tree_.root());
    v1::SearchRequest all = Glob("*");
    all.set_include_hidden(true);
    all.set_max_results(100000);
    ExpectSameAnswer(index, walker, all);
  }

  testing::TestTree tree_;
  testing::TestTree dir_;  // the snapshot directory
};

TEST_F(FileIndexSnapshotTest, ARestartLoadsTheSnapshotAndCatchesUp) {
  {
    FileIndex index(tree_.root(), Options());
    ASSERT_TRUE(index.Start().ok());
    ASSERT_TRUE(index.WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
    EXPECT_FALSE(index.stats().from_snapshot);
    index.Stop();
    EXPECT_GE(index.stats().snapshots_written, 2u);  // after the build, and at Stop
  }
  // Changes while no index runs: found by the catch-up.
  tree_.Remove("src/deep/x.h");
  tree_.File("src/deep/y.h");
  tree_.Dir("new");
  tree_.File("new/z.h");
  FileIndex index(tree_.root(), Options());
  ASSERT_TRUE(index.Start().ok());
  ExpectSameAsTheWalk(index);
  const FileIndexStats stats = index.stats();
  EXPECT_TRUE(stats.from_snapshot);
  EXPECT_EQ(stats.snapshot_refused, "");
  EXPECT_EQ(stats.entries, 8u);
}

TEST_F(FileIndexSnapshotTest, ADamagedSnapshotIsIgnoredAndTheIndexBuilt) {
  {
    FileIndex index(tree_.root(), Options());
    ASSERT_TRUE(index.Start().ok());
    ASSERT_TRUE(index.WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
    index.Stop();
  }
  std::string bytes;
  {
    std::ifstream in(SnapshotPath(), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(bytes.size(), 80u);
  bytes[bytes.size() - 3] ^= 1;
  std::ofstream(SnapshotPath(), std::ios::binary | std::ios::trunc) << bytes;
  FileIndex index(tree_.root(), Options());
  ASSERT_TRUE(index.Start().ok());
  ExpectSameAsTheWalk(index);
  EXPECT_FALSE(index.stats().from_snapshot);
  EXPECT_THAT(index.stats().snapshot_refused, HasSubstr("checksum does not match"));
}

TEST_F(FileIndexSnapshotTest, ASnapshotOfAnotherRootIsIgnored) {
  testing::TestTree other;
  other.File("elsewhere.h");
  {
    FileIndex index(other.root(), Options());
    ASSERT_TRUE(index.Start().ok());
    ASSERT_TRUE(index.WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
  }
  FileIndex index(tree_.root(), Options());
  ASSERT_TRUE(index.Start().ok());
  ExpectSameAsTheWalk(index);
  EXPECT_THAT(index.stats().snapshot_refused, HasSubstr("of another directory"));
}

TEST_F(FileIndexSnapshotTest, SnapshotsAreWrittenAtEachInterval) {
  FileIndexOptions options = Options();
  options.snapshot_interval = absl::Milliseconds(20);
  FileIndex index(tree_.root(), options);
  ASSERT_TRUE(index.Start().ok());
  // After the build, then every 20 ms: a few within the bound.
  EXPECT_TRUE(
      testing::WaitFor([&] { return index.stats().snapshots_written >= 4; }, absl::Seconds(30)));
  EXPECT_EQ(index.stats().snapshot_error, "");
}

TEST_F(FileIndexSnapshotTest, SaveSnapshotSaysWhyNot) {
  FileIndex without(tree_.root());
  EXPECT_TRUE(absl::IsFailedPrecondition(without.SaveSnapshot()));
  FileIndex unstarted(tree_.root(), Options());
  EXPECT_TRUE(absl::IsUnavailable(unstarted.SaveSnapshot()));
}

// The child of KillDuringWritingNeverLeavesASnapshotThatLoadsWrong: writes
// snapshots of the tree, changing it between them, until killed.
TEST(FileIndexSnapshotChild, WritesUntilKilled) {
  const char* tree = std::getenv("FILEMESH_SNAPSHOT_CHILD_TREE");
  const char* dir = std::getenv("FILEMESH_SNAPSHOT_CHILD_DIR");
  if (tree == nullptr || dir == nullptr) GTEST_SKIP() << "run by the test below";
  FileIndexOptions options;
  options.watch = IndexWatch::kInotify;
  options.snapshot_dir = dir;
  FileIndex index(tree, options);
  ASSERT_TRUE(index.Start().ok());
  for (int i = 0;; ++i) {
    const std::string file = absl::StrCat(tree, "/changing/f", i % 50);
    if (::unlink(file.c_str()) != 0) std::ofstream{file};
    ASSERT_TRUE(index.WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
    ASSERT_TRUE(index.SaveSnapshot().ok());
  }
}

TEST_F(FileIndexSnapshotTest, KillDuringWritingNeverLeavesASnapshotThatLoadsWrong) {
  tree_.Dir("changing");
  for (int i = 0; i < 2000; ++i) tree_.File(absl::StrCat("changing/bulk", i));
  std::mt19937_64 random(std::random_device{}());
  int loaded = 0;
  for (int round = 0; round < 8; ++round) {
    const std::string tree_env = absl::StrCat("FILEMESH_SNAPSHOT_CHILD_TREE=", tree_.root());
    const std::string dir_env = absl::StrCat("FILEMESH_SNAPSHOT_CHILD_DIR=", dir_.root());
    const std::string filter = "--gtest_filter=FileIndexSnapshotChild.WritesUntilKilled";
    char* argv[] = {const_cast<char*>("file_index_test"), const_cast<char*>(filter.c_str()),
                    nullptr};
    char* envp[] = {const_cast<char*>(tree_env.c_str()), const_cast<char*>(dir_env.c_str()),
                    nullptr};
    pid_t child;
    ASSERT_EQ(::posix_spawn(&child, "/proc/self/exe", nullptr, nullptr, argv, envp), 0);
    // The child writes for a while: kill -9 at a random moment of it.
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + random() % 400));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child ended on its own: " << status;

    // Whatever the kill left loads right (then catches up) or is refused.
    FileIndex index(tree_.root(), Options());
    ASSERT_TRUE(index.Start().ok());
    ExpectSameAsTheWalk(index);
    const FileIndexStats stats = index.stats();
    if (stats.from_snapshot) ++loaded;
    EXPECT_EQ(stats.snapshot_refused, "") << "a rename is atomic: never a part of a snapshot";
    index.Stop();
    // The killed writer's temporary file is gone: the snapshot alone is left.
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(dir_.root())) {
      files.push_back(e.path().filename().string());
    }
    EXPECT_THAT(files, ::testing::ElementsAre(internal::kSnapshotName));
  }
  EXPECT_GT(loaded, 0);
}

// A start removes the temporary files of writers that died, and leaves those
// of live ones: two commands sharing an --index-dir do not break each other.
TEST_F(FileIndexSnapshotTest, OnlyDeadWritersTemporaryFilesAreRemoved) {
  // A pid that is free: a child's, once it has ended and been reaped.
  pid_t dead;
  char* argv[] = {const_cast<char*>("true"), nullptr};
  ASSERT_EQ(::posix_spawnp(&dead, "true", nullptr, nullptr, argv, environ), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(dead, &status, 0), dead);
  const std::string prefix = absl::StrCat(".", internal::kSnapshotName, ".");
  const std::string of_dead = absl::StrCat(prefix, dead, ".tmp");
  const std::string of_live = absl::StrCat(prefix, ::getppid(), ".tmp");
  const std::string not_ours = absl::StrCat(prefix, "notapid.tmp");
  for (const std::string& name : {of_dead, of_live, not_ours}) {
    std::ofstream(absl::StrCat(dir_.root(), "/", name)) << "partial";
  }
  FileIndex index(tree_.root(), Options());
  ASSERT_TRUE(index.Start().ok());
  index.Stop();  // writes the snapshot
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir_.root())) {
    files.push_back(e.path().filename().string());
  }
  EXPECT_THAT(files, ::testing::UnorderedElementsAre(internal::kSnapshotName, of_live, not_ours));
}

// ---------------------------------------------------------------------------
// The property: after random changes, once the index is current, it answers
// every request as a fresh walk does, byte for byte.

class Mutator {
 public:
  Mutator(const std::string& root, uint64_t seed) : root_(root), random_(seed) {}

  // One random change somewhere in the tree.
  void Step() {
    Scan();
    const int op = Pick(100);
    const std::string dir = dirs_[Pick(dirs_.size())];
    if (op < 24 || (files_.empty() && dirs_.size() < 2)) {
      MakeFile(Join(dir, Name()));
    } else if (op < 35) {
      ::mkdir(Path(Join(dir, Name())).c_str(), 0755);
    } else if (op < 43 && !files_.empty()) {
      ::unlink(Path(files_[Pick(files_.size())]).c_str());
    } else if (op < 48 && dirs_.size() > 1) {
      std::error_code ignored;
      std::filesystem::remove_all(Path(dirs_[1 + Pick(dirs_.size() - 1)]), ignored);
    } else if (op < 60) {
      Rename();
    } else if (op < 64 && !files_.empty()) {
      const std::string file = files_[Pick(files_.size())];
      ::unlink(Path(file).c_str());
      ::mkdir(Path(file).c_str(), 0755);
    } else if (op < 68 && dirs_.size() > 1) {
      const std::string d = dirs_[1 + Pick(dirs_.size() - 1)];
      ::chmod(Path(d).c_str(), Pick(2) == 0 ? 0 : 0755);
    } else if (op < 74) {
      const char* targets[] = {"..", "../..", "/etc", "x", "../../../.."};
      ::symlink(targets[Pick(5)], Path(Join(dir, Name())).c_str());
    } else if (op < 96 && !files_.empty()) {
      ChangeAttributes(files_[Pick(files_.size())], dir);
    } else {
      std::string chain = Join(dir, Name());
      for (int i = 0; i < 12 && ::mkdir(Path(chain).c_str(), 0755) == 0; ++i) chain += "/c";
      MakeFile(Join(chain, "leaf.h"));
    }
  }

  // A random request over what is there now.
  v1::SearchRequest Request() {
    Scan();
    v1::SearchRequest request;
    const char* globs[] = {"*", "*.h", "a*", "*b*", "**/c/*", "?", "[a-c]*", "*\xff*"};
    const int kind = Pick(10);
    if (kind < 7) {
      request.set_syntax(v1::PATTERN_SYNTAX_GLOB);
      request.set_pattern(globs[Pick(8)]);
    } else if (kind < 9) {
      request.set_syntax(v1::PATTERN_SYNTAX_SUBSTRING);
      request.set_pattern(Pick(2) == 0 ? "a" : "e.");
    } else {
      request.set_syntax(v1::PATTERN_SYNTAX_REGEX);
      request.set_pattern("^[a-e].*[0-9h]$");
    }
    request.set_case_insensitive(Pick(4) == 0);
    request.set_include_hidden(Pick(2) == 0);
    if (Pick(3) == 0) request.set_max_depth(1 + Pick(4));
    if (Pick(5) == 0) request.set_type(static_cast<v1::FileType>(1 + Pick(4)));
    if (Pick(6) == 0) request.set_min_size(Pick(200));
    if (Pick(8) == 0) request.set_max_size(100 + Pick(200));
    if (Pick(3) == 0) request.set_raw_path(dirs_[Pick(dirs_.size())]);
    request.set_max_results(100000);
    return request;
  }

 private:
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random_); }
  std::string Path(const std::string& rel) const { return rel.empty() ? root_ : root_ + "/" + rel; }
  static std::string Join(const std::string& dir, const std::string& name) {
    return dir.empty() ? name : dir + "/" + name;
  }

  // Short names from a small alphabet so that names meet again: hidden
  // ones, non-UTF-8 bytes, and the patterns' letters.
  std::string Name() {
    const char* parts[] = {"a", "b", "c", "e", ".", "x", "1", "\xff", "h", "_"};
    std::string name;
    const size_t n = 1 + Pick(4);
    for (size_t i = 0; i < n; ++i) name += parts[Pick(10)];
    if (Pick(3) == 0) name += ".h";
    if (name == "." || name == "..") name += "z";
    return name;
  }

  void MakeFile(const std::string& rel) {
    const int fd = ::open(Path(rel).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (::ftruncate(fd, static_cast<off_t>(Pick(300))) != 0) {
      // a size is not what is tested
    }
    ::close(fd);
  }

  // A file's size, time or mode changed, or another name linked to it
  // (`dir` for that name): what the index keeps of attributes must follow.
  void ChangeAttributes(const std::string& file, const std::string& dir) {
    const std::string path = Path(file);
    // Regular files only: truncate and chmod follow a symlink, and links
    // here point out of the tree (the directories on the way are the
    // scan's, never links).
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    switch (Pick(5)) {
      case 0: {  // written (through any of its names)
        const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) return;
        const std::string bytes(1 + Pick(100), 'w');
        if (::write(fd, bytes.data(), bytes.size()) < 0) {
          // nothing written, nothing to follow
        }
        ::close(fd);
        break;
      }
      case 1:
        ::truncate(path.c_str(), static_cast<off_t>(Pick(300)));
        break;
      case 2:
        ::chmod(path.c_str(), Pick(2) == 0 ? 0 : 0640);
        break;
      case 3: {
        const timespec times[2] = {
            {0, UTIME_OMIT},
            {static_cast<time_t>(1'000'000'000 + Pick(1'000'000)),
             static_cast<long>(Pick(1'000'000'000))}};  // NOLINT(runtime/int)
        ::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
        break;
      }
      default:  // a hard link: a change through one name is one through all
        ::link(path.c_str(), Path(Join(dir, Name())).c_str());
        break;
    }
  }

  void Rename() {
    if (dirs_.size() + files_.size() < 3) return;
    const bool dir = files_.empty() || (dirs_.size() > 1 && Pick(2) == 0);
    const std::string from = dir ? dirs_[1 + Pick(dirs_.size() - 1)] : files_[Pick(files_.size())];
    const std::string to_dir = dirs_[Pick(dirs_.size())];
    // Never into itself.
    if (dir && (to_dir == from || to_dir.rfind(from + "/", 0) == 0)) return;
    ::rename(Path(from).c_str(), Path(Join(to_dir, Name())).c_str());
  }

  // What is on disk now (links not followed; unreadable directories' insides
  // are not listed, which only narrows the choices).
  void Scan() {
    dirs_.assign(1, "");
    files_.clear();
    for (size_t i = 0; i < dirs_.size(); ++i) {
      const std::string dir = dirs_[i];
      DIR* d = ::opendir(Path(dir).c_str());
      if (d == nullptr) continue;
      while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        if (e->d_type == DT_DIR) {
          dirs_.push_back(Join(dir, name));
        } else {
          files_.push_back(Join(dir, name));
        }
      }
      ::closedir(d);
    }
  }

  const std::string root_;
  std::mt19937_64 random_;
  std::vector<std::string> dirs_;
  std::vector<std::string> files_;
};

class FileIndexPropertyTest : public ::testing::TestWithParam<IndexWatch> {};

TEST_P(FileIndexPropertyTest, AnswersAsAFreshWalkAfterRandomChanges) {
  testing::TestTree tree;
  FileIndexOptions options;
  options.watch = GetParam();
  options.verify_interval = absl::ZeroDuration();  // the reports alone
  FileIndex index(tree.root(), options);
  absl::Status started = index.Start();
  if (GetParam() == IndexWatch::kFanotify && absl::IsPermissionDenied(started)) GTEST_SKIP();
  ASSERT_TRUE(started.ok()) << started;
  // Answers from the attributes kept, not read at each search.
  ASSERT_TRUE(index.WaitUntilAttributesKept(absl::Now() + absl::Seconds(30)));
  FileSearcher walker(tree.root());
  const uint64_t seed = std::random_device()();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  Mutator mutator(tree.root(), seed);
  std::mt19937_64 random(seed);
  for (int round = 0; round < 40; ++round) {
    const int changes = 1 + static_cast<int>(random() % 25);
    for (int i = 0; i < changes; ++i) mutator.Step();
    ASSERT_TRUE(index.WaitUntilCurrent(absl::Now() + absl::Seconds(30)));
    for (int i = 0; i < 6; ++i) {
      ExpectSameAnswer(index, walker, mutator.Request());
      if (HasFailure()) return;
    }
  }
  // The reports alone kept it right, not a rescan after a lost one. Only
  // on inotify: a fanotify mark hears the whole filesystem, whose other
  // writers (tests running beside this one) may overflow its queue.
  if (GetParam() == IndexWatch::kInotify) {
    EXPECT_EQ(index.stats().overflows, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Watch, FileIndexPropertyTest,
                         ::testing::Values(IndexWatch::kInotify, IndexWatch::kFanotify), WatchName);

}  // namespace
}  // namespace filemesh
