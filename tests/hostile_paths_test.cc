// The jail: a table of hostile request paths, checked against both resolvers
// and through the public FileLister and FileSearcher.

#include <fcntl.h>

#include <string>
#include <vector>

#include "filemesh/file_lister.hpp"
#include "filemesh/file_searcher.hpp"
#include "fs/beneath.h"
#include "gtest/gtest.h"
#include "test_tree.h"

namespace filemesh {
namespace {

using absl::StatusCode;
using internal::Resolver;

struct HostileCase {
  const char* label;
  std::string path;
  StatusCode expected;
};

std::vector<HostileCase> Cases() {
  using namespace std::string_literals;
  return {
      {"root", "", StatusCode::kOk},
      {"dot", ".", StatusCode::kOk},
      {"plain directory", "dir", StatusCode::kOk},
      {"dotdot that stays inside", "dir/sub/..", StatusCode::kOk},
      {"relative link inside", "link_in", StatusCode::kOk},
      {"link to .. that stays inside", "dir/up_to_root", StatusCode::kOk},
      {"name that is not UTF-8",
       "bad\xff"
       "dir",
       StatusCode::kOk},
      {"dotdot", "..", StatusCode::kInvalidArgument},
      {"dotdot then outside", "../etc", StatusCode::kInvalidArgument},
      {"dotdot climbing late", "dir/../../etc", StatusCode::kInvalidArgument},
      {"absolute", "/etc", StatusCode::kInvalidArgument},
      {"slash", "/", StatusCode::kInvalidArgument},
      {"NUL byte", "dir\0/../.."s, StatusCode::kInvalidArgument},
      {"component over NAME_MAX", std::string(256, 'n'), StatusCode::kInvalidArgument},
      {"path over PATH_MAX", std::string(5000, 'd'), StatusCode::kInvalidArgument},
      {"absolute link out", "link_out", StatusCode::kPermissionDenied},
      {"through absolute link out", "link_out/ssl", StatusCode::kPermissionDenied},
      {"relative link climbing out", "link_up", StatusCode::kPermissionDenied},
      {"link climbing out through a dir", "link_up_deep", StatusCode::kPermissionDenied},
      {"absolute link back inside", "link_abs_in", StatusCode::kPermissionDenied},
      {"magic proc link", "link_proc", StatusCode::kPermissionDenied},
      {"symlink loop", "loop_a", StatusCode::kFailedPrecondition},
      {"self loop", "self", StatusCode::kFailedPrecondition},
      {"dangling link", "dangling", StatusCode::kNotFound},
      {"missing", "missing", StatusCode::kNotFound},
      {"regular file", "plainfile", StatusCode::kFailedPrecondition},
      {"through a regular file", "plainfile/x", StatusCode::kFailedPrecondition},
      {"fifo", "fifo", StatusCode::kFailedPrecondition},
      {"permission denied", "locked", StatusCode::kPermissionDenied},
  };
}

class HostilePathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.Dir("dir");
    tree_.Dir("dir/sub");
    tree_.File("dir/f");
    tree_.File("plainfile");
    tree_.Dir(
        "bad\xff"
        "dir");
    tree_.Dir("locked", 0);
    tree_.Fifo("fifo");
    tree_.Symlink("/etc", "link_out");
    tree_.Symlink("../", "link_up");
    tree_.Symlink("dir/../../", "link_up_deep");
    tree_.Symlink(tree_.Abs("dir"), "link_abs_in");
    tree_.Symlink("/proc/self/root", "link_proc");
    tree_.Symlink("dir", "link_in");
    tree_.Symlink("..", "dir/up_to_root");
    tree_.Symlink("loop_b", "loop_a");
    tree_.Symlink("loop_a", "loop_b");
    tree_.Symlink("self", "self");
    tree_.Symlink("nothing", "dangling");
  }

  testing::TestTree tree_;
  testing::ScopedEnforcePermissions enforce_;
};

void CheckResolver(const testing::TestTree& tree, Resolver resolver) {
  const internal::UniqueFd root(::open(tree.root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(root.valid());
  for (const HostileCase& c : Cases()) {
    absl::StatusOr<std::string> clean = internal::CleanRelativePath(c.path);
    absl::Status status = clean.status();
    if (clean.ok()) status = internal::OpenDirectoryBeneath(root.get(), *clean, resolver).status();
    EXPECT_EQ(status.code(), c.expected) << c.label << ": " << status;
    EXPECT_FALSE(status.message().empty() && !status.ok()) << c.label;
  }
}

TEST_F(HostilePathsTest, Openat2ResolverRefusesEveryEscape) {
  if (!internal::Openat2Available()) GTEST_SKIP() << "kernel without openat2";
  CheckResolver(tree_, Resolver::kOpenat2);
}

TEST_F(HostilePathsTest, PortableResolverRefusesEveryEscape) {
  CheckResolver(tree_, Resolver::kPortable);
}

TEST_F(HostilePathsTest, FileListerRefusesEveryEscape) {
  FileLister lister(tree_.root());
  for (const HostileCase& c : Cases()) {
    v1::ListRequest request;
    request.set_raw_path(c.path);
    if (c.path.empty()) request.set_path("");
    EXPECT_EQ(lister.List(request).status().code(), c.expected) << c.label;
  }
}

TEST_F(HostilePathsTest, FileSearcherRefusesEveryEscape) {
  FileSearcher searcher(tree_.root());
  for (const HostileCase& c : Cases()) {
    v1::SearchRequest request;
    request.set_raw_path(c.path);
    request.set_pattern("*");
    EXPECT_EQ(searcher.Search(request).status().code(), c.expected) << c.label;
  }
}

TEST_F(HostilePathsTest, PublicClassesOnThePortableResolver) {
  internal::SetAutoResolverForTesting(Resolver::kPortable);
  FileLister lister(tree_.root());
  FileSearcher searcher(tree_.root());
  for (const HostileCase& c : Cases()) {
    v1::ListRequest list;
    list.set_raw_path(c.path);
    EXPECT_EQ(lister.List(list).status().code(), c.expected) << c.label;
    v1::SearchRequest search;
    search.set_raw_path(c.path);
    search.set_pattern("*");
    EXPECT_EQ(searcher.Search(search).status().code(), c.expected) << c.label;
  }
  internal::SetAutoResolverForTesting(Resolver::kAuto);
}

TEST_F(HostilePathsTest, ErrorMessagesNameTheInputPrintably) {
  FileLister lister(tree_.root());
  v1::ListRequest request;
  request.set_raw_path("link_out/\xff");
  const absl::Status status = lister.List(request).status();
  EXPECT_NE(status.message().find("link_out/\\xff"), absl::string_view::npos) << status;
}

}  // namespace
}  // namespace filemesh
