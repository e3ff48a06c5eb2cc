#include "filemesh/file_lister.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "filemesh/names.hpp"
#include "fs/beneath.h"
#include "fs/entry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_tree.h"

namespace filemesh {
namespace {

using ::testing::ElementsAre;
using testing::Paths;

class FileListerTest : public ::testing::Test {
 protected:
  v1::ListResponse ListOk(const v1::ListRequest& request) {
    absl::StatusOr<v1::ListResponse> response = FileLister(tree_.root()).List(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : v1::ListResponse();
  }

  // Walks every page and returns the exact paths in the order served.
  std::vector<std::string> WalkAll(const FileLister& lister, v1::ListRequest request) {
    std::vector<std::string> all;
    for (int pages = 0; pages < 10000; ++pages) {
      absl::StatusOr<v1::ListResponse> page = lister.List(request);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      EXPECT_LE(page->entries_size(), static_cast<int>(request.page_size()));
      for (const std::string& p : Paths(page->entries())) all.push_back(p);
      if (page->next_page_token().empty()) break;
      request.set_page_token(page->next_page_token());
    }
    return all;
  }

  testing::TestTree tree_;
};

TEST_F(FileListerTest, ListsOneLevelSortedByNameWithoutHiddenEntries) {
  tree_.Dir("b");
  tree_.File("b/inner");
  tree_.File("a.txt", 3);
  tree_.File("C");
  tree_.File(".hidden");
  const v1::ListResponse r = ListOk(v1::ListRequest());
  EXPECT_THAT(Paths(r.entries()), ElementsAre("C", "a.txt", "b"));  // byte order
  EXPECT_TRUE(r.next_page_token().empty());
}

TEST_F(FileListerTest, HiddenEntriesOnRequest) {
  tree_.File(".hidden");
  tree_.File("shown");
  v1::ListRequest request;
  request.set_include_hidden(true);
  EXPECT_THAT(Paths(ListOk(request).entries()), ElementsAre(".hidden", "shown"));
}

TEST_F(FileListerTest, EntriesCarryTypeSizeModeTimeAndLinkTarget) {
  tree_.Dir("d", 0750);
  tree_.File("d/file", 1234);
  tree_.SetMtime("d/file", 1700000000);
  tree_.Symlink("../elsewhere", "d/link");
  tree_.Fifo("d/pipe");
  v1::ListRequest request;
  request.set_path("d");
  const v1::ListResponse r = ListOk(request);
  ASSERT_EQ(r.entries_size(), 3);
  const v1::FileEntry& file = r.entries(0);
  EXPECT_EQ(file.path(), "d/file");
  EXPECT_EQ(file.name(), "file");
  EXPECT_EQ(file.type(), v1::FILE_TYPE_FILE);
  EXPECT_EQ(file.size(), 1234u);
  EXPECT_EQ(file.modified().seconds(), 1700000000);
  EXPECT_EQ(file.mode() & 0777, 0644u);
  EXPECT_TRUE(S_ISREG(file.mode()));
  const v1::FileEntry& link = r.entries(1);
  EXPECT_EQ(link.type(), v1::FILE_TYPE_SYMLINK);
  EXPECT_EQ(link.symlink_target(), "../elsewhere");
  EXPECT_EQ(r.entries(2).type(), v1::FILE_TYPE_OTHER);
  EXPECT_TRUE(r.entries(0).raw_path().empty());  // valid UTF-8: no raw copy
}

TEST_F(FileListerTest, TargetsThatLeaveTheRootAreWithheldWhenAsked) {
  tree_.Dir("d");
  tree_.Symlink("/etc/passwd", "d/absolute");
  tree_.Symlink("../..", "d/climbs");
  tree_.Symlink("../d/./x/../y", "d/stays");
  tree_.Symlink("caf\xff", "d/bytes");
  v1::ListRequest request;
  request.set_path("d");
  FileListerOptions options;
  options.redact_outside_targets = true;
  absl::StatusOr<v1::ListResponse> r = FileLister(tree_.root(), options).List(request);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(Paths(r->entries()),
            (std::vector<std::string>{"d/absolute", "d/bytes", "d/climbs", "d/stays"}));
  for (int i : {0, 2}) {
    EXPECT_TRUE(r->entries(i).symlink_target_redacted()) << i;
    EXPECT_EQ(r->entries(i).symlink_target(), "") << i;
    EXPECT_EQ(r->entries(i).raw_symlink_target(), "") << i;
    EXPECT_EQ(r->entries(i).size(), 0u) << i;  // the target's length: withheld too
  }
  EXPECT_EQ(r->entries(3).size(), 13u);  // "../d/./x/../y"
  EXPECT_FALSE(r->entries(1).symlink_target_redacted());
  EXPECT_EQ(r->entries(1).raw_symlink_target(), "caf\xff");
  EXPECT_FALSE(r->entries(3).symlink_target_redacted());
  EXPECT_EQ(r->entries(3).symlink_target(), "../d/./x/../y");
  // Sorted by size, withheld targets count as 0 bytes: their place does not
  // tell their length (11 and 5 bytes; "caf\xff" is 4).
  request.set_sort(v1::SORT_FIELD_SIZE);
  r = FileLister(tree_.root(), options).List(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Paths(r->entries()),
            (std::vector<std::string>{"d/absolute", "d/climbs", "d/bytes", "d/stays"}));
  EXPECT_EQ(Paths(ListOk(request).entries()),
            (std::vector<std::string>{"d/bytes", "d/climbs", "d/absolute", "d/stays"}));
  request.set_sort(v1::SORT_FIELD_NAME);
  // Off by default in the SDK.
  EXPECT_EQ(ListOk(request).entries(0).symlink_target(), "/etc/passwd");
}

TEST_F(FileListerTest, NamesThatAreNotUtf8CarryExactBytes) {
  const std::string bad =
      "bad\xff\xfe"
      "name";
  tree_.Dir(bad);
  tree_.File(bad + "/in\x80side");
  tree_.Symlink("t\xff", bad + "/link");
  v1::ListRequest request;
  request.set_raw_path(bad);
  const v1::ListResponse r = ListOk(request);
  ASSERT_EQ(r.entries_size(), 2);
  const v1::FileEntry& e = r.entries(0);
  EXPECT_EQ(e.path(), "bad\\xff\\xfename/in\\x80side");
  EXPECT_EQ(e.raw_path(), bad + "/in\x80side");
  EXPECT_EQ(e.name(), "in\\x80side");
  EXPECT_EQ(e.raw_name(), "in\x80side");
  EXPECT_TRUE(IsValidUtf8(e.path()));
  const v1::FileEntry& link = r.entries(1);
  EXPECT_EQ(link.raw_name(), "");  // "link" is valid UTF-8
  EXPECT_EQ(link.symlink_target(), "t\\xff");
  EXPECT_EQ(link.raw_symlink_target(), "t\xff");
  // The entry survives a wire round trip (the string fields are valid UTF-8).
  v1::ListResponse copy;
  ASSERT_TRUE(copy.ParseFromString(r.SerializeAsString()));
  EXPECT_EQ(ExactPath(copy.entries(0)), bad + "/in\x80side");
}

TEST_F(FileListerTest, SortsBySizeAndModifiedBothWaysWithNameAsTieBreak) {
  tree_.File("small", 1);
  tree_.File("big", 300);
  tree_.File("mid-b", 20);
  tree_.File("mid-a", 20);
  tree_.SetMtime("small", 400);
  tree_.SetMtime("big", 100);
  tree_.SetMtime("mid-a", 300);
  tree_.SetMtime("mid-b", 300);
  v1::ListRequest request;
  request.set_sort(v1::SORT_FIELD_SIZE);
  EXPECT_THAT(Paths(ListOk(request).entries()), ElementsAre("small", "mid-a", "mid-b", "big"));
  request.set_descending(true);
  EXPECT_THAT(Paths(ListOk(request).entries()), ElementsAre("big", "mid-b", "mid-a", "small"));
  request.set_sort(v1::SORT_FIELD_MODIFIED);
  EXPECT_THAT(Paths(ListOk(request).entries()), ElementsAre("small", "mid-b", "mid-a", "big"));
  request.set_descending(false);
  EXPECT_THAT(Paths(ListOk(request).entries()), ElementsAre("big", "mid-a", "mid-b", "small"));
  request.set_sort(v1::SORT_FIELD_NAME);
  request.set_descending(true);
  EXPECT_THAT(Paths(ListOk(request).entries()), ElementsAre("small", "mid-b", "mid-a", "big"));
}

TEST_F(FileListerTest, ModifiedTimesBeforeTheEpochSortFirst) {
  tree_.File("old");
  tree_.File("new");
  tree_.SetMtime("old", -1000);
  tree_.SetMtime("new", 1000);
  v1::ListRequest request;
  request.set_sort(v1::SORT_FIELD_MODIFIED);
  EXPECT_THAT(Paths(ListOk(request).entries()), ElementsAre("old", "new"));
}

TEST_F(FileListerTest, PagesCoverEveryEntryOnceInEveryOrder) {
  std::vector<std::string> names;
  for (int i = 0; i < 257; ++i) {
    const std::string name = "f" + std::to_string(i * 7919 % 1000);
    tree_.File(name, static_cast<size_t>(i % 5));  // many equal sizes: ties
    tree_.SetMtime(name, 1000 + i % 3);
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  FileLister lister(tree_.root());
  for (v1::SortField sort : {v1::SORT_FIELD_NAME, v1::SORT_FIELD_SIZE, v1::SORT_FIELD_MODIFIED}) {
    for (bool desc : {false, true}) {
      for (uint32_t page_size : {1u, 10u, 100u, 256u, 257u, 1000u}) {
        v1::ListRequest request;
        request.set_sort(sort);
        request.set_descending(desc);
        request.set_page_size(page_size);
        const std::vector<std::string> paged = WalkAll(lister, request);
        request.set_page_size(FileLister::kMaxPageSize);
        const std::vector<std::string> whole = WalkAll(lister, request);
        EXPECT_EQ(paged, whole) << "sort " << sort << " desc " << desc << " size " << page_size;
        std::vector<std::string> sorted = paged;
        std::sort(sorted.begin(), sorted.end());
        EXPECT_EQ(sorted, names);
      }
    }
  }
}

TEST_F(FileListerTest, LargeDirectoriesSortBySizeOnEveryCore) {
  // Past the threshold where stats are spread over threads.
  constexpr int kFiles = 5000;
  std::vector<std::pair<uint64_t, std::string>> expected;
  for (int i = 0; i < kFiles; ++i) {
    const std::string name = "s" + std::to_string(i);
    const size_t size = static_cast<size_t>(i * 31 % 97);
    tree_.File(name, size);
    expected.emplace_back(size, name);
  }
  std::sort(expected.begin(), expected.end());
  FileLister lister(tree_.root());
  v1::ListRequest request;
  request.set_sort(v1::SORT_FIELD_SIZE);
  request.set_page_size(1000);
  std::vector<std::pair<uint64_t, std::string>> served;
  for (;;) {
    absl::StatusOr<v1::ListResponse> page = lister.List(request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::FileEntry& e : page->entries()) served.emplace_back(e.size(), e.name());
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(served, expected);
}

TEST_F(FileListerTest, EntriesAddedOrRemovedBetweenPagesAreNeverRepeated) {
  for (int i = 0; i < 100; ++i) tree_.File("e" + std::to_string(1000 + i));
  FileLister lister(tree_.root());
  v1::ListRequest request;
  request.set_page_size(10);
  std::vector<std::string> seen;
  std::set<std::string> removed;
  for (int page_no = 0;; ++page_no) {
    absl::StatusOr<v1::ListResponse> page = lister.List(request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const std::string& p : Paths(page->entries())) seen.push_back(p);
    if (page->next_page_token().empty()) break;
    // Between pages: remove an entry not yet seen, add some before and after
    // the cursor.
    const std::string victim = "e" + std::to_string(1099 - page_no);
    tree_.Remove(victim);
    removed.insert(victim);
    tree_.File("a-new-" + std::to_string(page_no));  // sorts before every "e..."
    tree_.File("z-new-" + std::to_string(page_no));  // sorts after
    request.set_page_token(page->next_page_token());
  }
  const std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "an entry was served twice";
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  for (int i = 0; i < 100; ++i) {
    const std::string name = "e" + std::to_string(1000 + i);
    if (removed.count(name) == 0) {
      EXPECT_EQ(unique.count(name), 1u) << name << " was missed";
    }
  }
}

TEST_F(FileListerTest, PagesEndAtTheByteBudgetAndTokensGoOn) {
  // 60 entries of about 330 serialized bytes, pages of up to 100 entries
  // and 5,000 bytes: every page stops below the byte budget, the tokens
  // carry on, and every entry comes exactly once, in order, in every sort.
  for (int i = 0; i < 60; ++i) {
    tree_.File(std::string(190, 'n') + std::to_string(100 + i), static_cast<size_t>(i % 7));
  }
  FileListerOptions options;
  options.max_response_bytes = 5000;
  FileLister lister(tree_.root(), options);
  for (v1::SortField sort : {v1::SORT_FIELD_NAME, v1::SORT_FIELD_SIZE}) {
    for (bool descending : {false, true}) {
      v1::ListRequest request;
      request.set_page_size(100);
      request.set_sort(sort);
      request.set_descending(descending);
      std::vector<std::string> seen;
      int pages = 0;
      while (true) {
        absl::StatusOr<v1::ListResponse> page = lister.List(request);
        ASSERT_TRUE(page.ok()) << page.status();
        ++pages;
        size_t bytes = 0;
        for (const v1::FileEntry& e : page->entries()) bytes += e.ByteSizeLong() + 3;
        EXPECT_LE(bytes, options.max_response_bytes);
        for (const std::string& p : Paths(page->entries())) seen.push_back(p);
        if (page->next_page_token().empty()) break;
        // A page cut by bytes is full: one more entry would not have fitted.
        EXPECT_GT(bytes + page->entries(0).ByteSizeLong() + 3, options.max_response_bytes);
        request.set_page_token(page->next_page_token());
        ASSERT_LT(pages, 100) << "paging does not end";
      }
      EXPECT_EQ(seen.size(), 60u);
      EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 60u) << "repeated";
      EXPECT_GE(pages, 4);
    }
  }
  // A budget below one entry still moves on one entry per page.
  options.max_response_bytes = 1;
  FileLister tiny(tree_.root(), options);
  v1::ListRequest request;
  absl::StatusOr<v1::ListResponse> page = tiny.List(request);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->entries_size(), 1);
  EXPECT_FALSE(page->next_page_token().empty());
}

TEST_F(FileListerTest, APassedDeadlineIsDeadlineExceeded) {
  tree_.File("a");
  FileLister lister(tree_.root());
  absl::StatusOr<v1::ListResponse> late =
      lister.List(v1::ListRequest(), absl::Now() - absl::Milliseconds(1));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  EXPECT_TRUE(lister.List(v1::ListRequest(), absl::Now() + absl::Seconds(10)).ok());
}

TEST_F(FileListerTest, PageSizeDefaultsAndCap) {
  for (int i = 0; i < 150; ++i) tree_.File("n" + std::to_string(i));
  FileLister lister(tree_.root());
  v1::ListRequest request;
  absl::StatusOr<v1::ListResponse> first = lister.List(request);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->entries_size(), 100);
  EXPECT_FALSE(first->next_page_token().empty());
  request.set_page_size(FileLister::kMaxPageSize + 1);
  EXPECT_EQ(lister.List(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FileListerTest, TokensAreBoundToTheirRequest) {
  tree_.Dir("d");
  for (int i = 0; i < 5; ++i) tree_.File("n" + std::to_string(i));
  FileLister lister(tree_.root());
  v1::ListRequest request;
  request.set_page_size(2);
  absl::StatusOr<v1::ListResponse> first = lister.List(request);
  ASSERT_TRUE(first.ok());
  const std::string token = first->next_page_token();
  ASSERT_FALSE(token.empty());

  const auto code_with = [&](auto mutate) {
    v1::ListRequest r = request;
    r.set_page_token(token);
    mutate(r);
    return lister.List(r).status().code();
  };
  EXPECT_EQ(code_with([](v1::ListRequest&) {}), absl::StatusCode::kOk);
  EXPECT_EQ(code_with([](v1::ListRequest& r) { r.set_page_size(3); }), absl::StatusCode::kOk);
  EXPECT_EQ(code_with([](v1::ListRequest& r) { r.set_path("d"); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code_with([](v1::ListRequest& r) { r.set_sort(v1::SORT_FIELD_SIZE); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code_with([](v1::ListRequest& r) { r.set_descending(true); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code_with([](v1::ListRequest& r) { r.set_include_hidden(true); }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code_with([&](v1::ListRequest& r) { r.set_page_token(token + "x"); }),
            absl::StatusCode::kInvalidArgument);
  // Another lister with another secret refuses it.
  FileListerOptions options;
  options.page_token_secret = "other";
  v1::ListRequest r = request;
  r.set_page_token(token);
  EXPECT_EQ(FileLister(tree_.root(), options).List(r).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FileListerTest, UnknownSortIsInvalidArgument) {
  v1::ListRequest request;
  request.set_sort(static_cast<v1::SortField>(99));
  EXPECT_EQ(FileLister(tree_.root()).List(request).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FileListerTest, MissingRootIsReportedOnEveryCall) {
  FileLister lister(tree_.Abs("does-not-exist"));
  EXPECT_EQ(lister.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(lister.List(v1::ListRequest()).status().code(), absl::StatusCode::kNotFound);
  tree_.File("file");
  EXPECT_EQ(FileLister(tree_.Abs("file")).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FileListerTest, RootStaysPinnedWhenItsPathIsReplaced) {
  tree_.Dir("served");
  tree_.File("served/original");
  FileLister lister(tree_.Abs("served"));
  ASSERT_EQ(::rename(tree_.Abs("served").c_str(), tree_.Abs("moved").c_str()), 0);
  tree_.Dir("served");
  tree_.File("served/impostor");
  absl::StatusOr<v1::ListResponse> r = lister.List(v1::ListRequest());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Paths(r->entries()), ElementsAre("original"));
}

TEST_F(FileListerTest, ConcurrentCallsAgree) {
  for (int i = 0; i < 300; ++i) tree_.File("c" + std::to_string(i), static_cast<size_t>(i));
  FileLister lister(tree_.root());
  v1::ListRequest request;
  request.set_sort(v1::SORT_FIELD_SIZE);
  request.set_page_size(50);
  const std::vector<std::string> expected = WalkAll(lister, request);
  ASSERT_EQ(expected.size(), 300u);
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> results(8);
  for (size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) results[t] = WalkAll(lister, request);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const auto& r : results) EXPECT_EQ(r, expected);
}

TEST(TargetLeavesRootTest, ReadsTheTargetFromTheLinksDirectory) {
  const struct {
    const char* link;
    const char* target;
    bool leaves;
  } cases[] = {
      {"l", "/", true},
      {"a/b/l", "/a/b", true},
      {"l", "..", true},
      {"l", "../l", true},
      {"l", "x/../..", true},
      {"a/l", "..", false},
      {"a/l", "../..", true},
      {"a/b/l", "../../c", false},
      {"a/b/l", "../../../c", true},
      {"a/l", "x/../../y", false},
      {"a/l", "./.././..", true},
      {"l", "x//y/", false},
      {"l", "", false},
      {"l", ".", false},
      {"a/l", "../a/../../b", true},
      {"l", "...", false},
      {"l", "..x", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(internal::TargetLeavesRoot(c.link, c.target), c.leaves)
        << c.link << " -> " << c.target;
  }
}

// The checks run once the limit is lifted: a sanitizer's runtime may need a
// descriptor of its own to check them.
TEST_F(FileListerTest, OutOfDescriptorsIsResourceExhaustedOnBothResolvers) {
  if (testing::kSanitizerNeedsDescriptors) {
    GTEST_SKIP() << "the sanitizer runtime needs descriptors of its own for its checks";
  }
  tree_.Dir("dir");
  const FileLister lister(tree_.root());
  std::vector<internal::Resolver> resolvers = {internal::Resolver::kPortable};
  if (internal::Openat2Available()) resolvers.push_back(internal::Resolver::kOpenat2);
  for (internal::Resolver resolver : resolvers) {
    for (const char* path : {"", "dir"}) {
      v1::ListRequest request;
      request.set_path(path);
      absl::Status status;
      internal::SetAutoResolverForTesting(resolver);
      {
        testing::ScopedDescriptorLimit limit(0);
        status = lister.List(request).status();
      }
      internal::SetAutoResolverForTesting(internal::Resolver::kAuto);
      EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
      EXPECT_THAT(status.message(), ::testing::HasSubstr("RLIMIT_NOFILE"));
    }
  }

  absl::Status root_status;
  absl::Status list_status;
  {
    testing::ScopedDescriptorLimit limit(0);
    const FileLister starved(tree_.root());
    root_status = starved.status();
    list_status = starved.List(v1::ListRequest()).status();
  }
  EXPECT_EQ(root_status.code(), absl::StatusCode::kResourceExhausted) << root_status;
  EXPECT_EQ(list_status.code(), absl::StatusCode::kResourceExhausted) << list_status;
}

TEST_F(FileListerTest, AScopeKeepsTheListingInsideItWithPathsFromTheRoot) {
  tree_.Dir("projects");
  tree_.Dir("projects/a");
  tree_.File("projects/a/notes.txt");
  tree_.Dir("projects/b");
  tree_.File("projects/b/secret.txt");
  tree_.Symlink("../b", "projects/a/to_b");
  const FileLister lister(tree_.root());
  v1::ListRequest request;
  request.set_scope("projects/a");
  request.set_path("projects/a");
  absl::StatusOr<v1::ListResponse> inside = lister.List(request);
  ASSERT_TRUE(inside.ok()) << inside.status();
  EXPECT_THAT(Paths(inside->entries()), ElementsAre("projects/a/notes.txt", "projects/a/to_b"));
  for (const char* path : {"projects/b", "projects/a/to_b", "projects", "", "projects/a/.."}) {
    request.set_path(path);
    EXPECT_EQ(lister.List(request).status().code(), absl::StatusCode::kPermissionDenied) << path;
  }
  request.set_scope("");
  request.set_path("projects/a/to_b");  // without a scope the link stays beneath the root
  absl::StatusOr<v1::ListResponse> unscoped = lister.List(request);
  ASSERT_TRUE(unscoped.ok()) << unscoped.status();
  EXPECT_THAT(Paths(unscoped->entries()), ElementsAre("projects/a/to_b/secret.txt"));
}

// Redaction is judged from where the directory really is: a path through a
// link to a parent (a/up -> ..) reads two levels deep but lists the root,
// where "../secret" leaves it.
TEST_F(FileListerTest, RedactionJudgesTheDirectorysRealPlaceNotThePathsText) {
  tree_.Dir("a");
  tree_.Symlink("..", "a/up");
  tree_.Symlink("../secret", "out");
  tree_.Symlink("inside", "in");
  FileListerOptions options;
  options.redact_outside_targets = true;
  const FileLister lister(tree_.root(), options);
  for (const char* path : {"", "a/up", "a/up/a/up"}) {
    SCOPED_TRACE(path);
    v1::ListRequest request;
    request.set_path(path);
    absl::StatusOr<v1::ListResponse> r = lister.List(request);
    ASSERT_TRUE(r.ok()) << r.status();
    int checked = 0;
    for (const v1::FileEntry& e : r->entries()) {
      if (e.name() == "out") {
        EXPECT_TRUE(e.symlink_target_redacted());
        EXPECT_EQ(e.symlink_target(), "");
        ++checked;
      } else if (e.name() == "in") {
        EXPECT_FALSE(e.symlink_target_redacted());
        EXPECT_EQ(e.symlink_target(), "inside");
        ++checked;
      }
    }
    EXPECT_EQ(checked, 2);
  }
}

TEST(FileListerOneFileSystemTest, APathAcrossAMountPointIsRefusedWhenAsked) {
  struct stat root_st, proc_st;
  ASSERT_EQ(::stat("/", &root_st), 0);
  if (::stat("/proc", &proc_st) != 0 || proc_st.st_dev == root_st.st_dev) {
    GTEST_SKIP() << "/proc is not a filesystem of its own here";
  }
  v1::ListRequest request;
  request.set_path("proc");
  request.set_page_size(1);
  EXPECT_TRUE(FileLister("/").List(request).ok());
  FileListerOptions options;
  options.one_file_system = true;
  const FileLister lister("/", options);
  const absl::Status refused = lister.List(request).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("another filesystem"));
  request.set_path("");
  EXPECT_TRUE(lister.List(request).ok());
}

}  // namespace
}  // namespace filemesh
