// The resolvers' costs and limits: descriptors per lookup whatever the depth,
// running out of descriptors, and the bounded openat2 retry.

#include "fs/beneath.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fs/errno_status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_tree.h"

namespace filemesh {
namespace {

using absl::StatusCode;
using internal::Resolver;
using internal::UniqueFd;
using ::testing::HasSubstr;

// "d/d/.../d", `depth` components.
std::string Chain(int depth) {
  std::string path;
  for (int i = 0; i < depth; ++i) path += i == 0 ? "d" : "/d";
  return path;
}

// "../" `count` times.
std::string Up(int count) {
  std::string path;
  for (int i = 0; i < count; ++i) path += "../";
  return path;
}

ino_t Inode(int fd) {
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

// The inode of the directory `depth` levels down the "d" chain, opened one
// level at a time.
ino_t ChainInode(int root_fd, int depth) {
  UniqueFd dir(::dup(root_fd));
  for (int i = 0; i < depth; ++i) {
    dir = UniqueFd(::openat(dir.get(), "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) return 0;
  }
  return Inode(dir.get());
}

std::vector<Resolver> Resolvers() {
  std::vector<Resolver> resolvers = {Resolver::kPortable};
  if (internal::Openat2Available()) resolvers.push_back(Resolver::kOpenat2);
  return resolvers;
}

const char* Name(Resolver resolver) {
  return resolver == Resolver::kPortable ? "portable" : "openat2";
}

// The fakes' call count (the hook is a plain function pointer).
std::atomic<int> fake_calls{0};

int AlwaysEagain(int, const char*, uint64_t, uint64_t) {
  ++fake_calls;
  return -EAGAIN;
}

int AlwaysEintr(int, const char*, uint64_t, uint64_t) {
  ++fake_calls;
  return -EINTR;
}

int EagainThreeTimesThenReal(int dir_fd, const char* path, uint64_t flags, uint64_t resolve) {
  if (++fake_calls <= 3) return -EAGAIN;
  return internal::SystemOpenat2(dir_fd, path, flags, resolve);
}

// The real system call, counting the EAGAINs it answers.
std::atomic<int> real_eagains{0};
int CountingOpenat2(int dir_fd, const char* path, uint64_t flags, uint64_t resolve) {
  const int fd = internal::SystemOpenat2(dir_fd, path, flags, resolve);
  if (fd == -EAGAIN) ++real_eagains;
  return fd;
}

class BeneathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.Dir("dir");
    tree_.Symlink("../../", "dir/link_out");
    root_.Reset(::open(tree_.root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_.valid());
    fake_calls = 0;
  }
  void TearDown() override { internal::SetOpenat2ForTesting(nullptr); }

  absl::Status Open(const std::string& path, Resolver resolver, ino_t* inode = nullptr) {
    absl::StatusOr<UniqueFd> fd = internal::OpenDirectoryBeneath(root_.get(), path, resolver);
    if (fd.ok() && inode != nullptr) *inode = Inode(fd->get());
    return fd.status();
  }

  testing::TestTree tree_;
  UniqueFd root_;
};

// The old portable walk kept one descriptor per component: 500 levels needed
// 500 of them, and ran out here.
TEST_F(BeneathTest, SixHundredLevelsDeepTakeAFewDescriptorsOnBothResolvers) {
  tree_.DeepChain("", "d", 600, "leaf");
  const ino_t at500 = ChainInode(root_.get(), 500);
  const ino_t at600 = ChainInode(root_.get(), 600);
  const int open_before = testing::OpenDescriptorCount();
  for (Resolver resolver : Resolvers()) {
    SCOPED_TRACE(Name(resolver));
    testing::ScopedDescriptorLimit limit(16);
    absl::StatusOr<UniqueFd> mid =
        internal::OpenDirectoryBeneath(root_.get(), Chain(500), resolver);
    ASSERT_TRUE(mid.ok()) << mid.status();
    EXPECT_EQ(Inode(mid->get()), at500);

    const UniqueFd deepest(internal::OpenSubdirectoryNoFollow(mid->get(), Chain(100), resolver));
    ASSERT_TRUE(deepest.valid()) << std::strerror(-deepest.get());
    EXPECT_EQ(Inode(deepest.get()), at600);

    const UniqueFd again(internal::OpenSubdirectoryNoFollow(root_.get(), Chain(500), resolver));
    ASSERT_TRUE(again.valid()) << std::strerror(-again.get());
    EXPECT_EQ(Inode(again.get()), at500);
  }
  EXPECT_EQ(testing::OpenDescriptorCount(), open_before);
}

TEST_F(BeneathTest, DotDotFromADeepLinkStaysBeneathTheRootWithAFewDescriptors) {
  const std::string deep = tree_.DeepChain("", "d", 500, "leaf");
  tree_.Symlink("../../..", deep + "/up");
  tree_.Symlink(Up(500), deep + "/top");
  tree_.Symlink(Up(501), deep + "/out");
  tree_.Symlink(Up(500) + Chain(10), deep + "/down");
  const ino_t root = Inode(root_.get());
  const ino_t at1 = ChainInode(root_.get(), 1);
  const ino_t at10 = ChainInode(root_.get(), 10);
  const ino_t at498 = ChainInode(root_.get(), 498);
  for (Resolver resolver : Resolvers()) {
    SCOPED_TRACE(Name(resolver));
    testing::ScopedDescriptorLimit limit(16);
    ino_t inode = 0;
    EXPECT_TRUE(Open(deep + "/up/d", resolver, &inode).ok());
    EXPECT_EQ(inode, at498);
    EXPECT_TRUE(Open(deep + "/top", resolver, &inode).ok());
    EXPECT_EQ(inode, root);
    EXPECT_TRUE(Open(deep + "/top/d", resolver, &inode).ok());
    EXPECT_EQ(inode, at1);
    EXPECT_TRUE(Open(deep + "/down", resolver, &inode).ok());
    EXPECT_EQ(inode, at10);
    EXPECT_EQ(Open(deep + "/out", resolver).code(), StatusCode::kPermissionDenied);
  }
}

// The checks run once the limit is lifted: a sanitizer's runtime may need a
// descriptor of its own to check them.
TEST_F(BeneathTest, OutOfDescriptorsIsResourceExhaustedNamingTheLimit) {
  for (Resolver resolver : Resolvers()) {
    SCOPED_TRACE(Name(resolver));
    absl::Status status;
    int sub;
    {
      testing::ScopedDescriptorLimit limit(0);
      status = Open("dir", resolver);
      sub = internal::OpenSubdirectoryNoFollow(root_.get(), "dir", resolver);
    }
    EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << status;
    EXPECT_THAT(status.message(), HasSubstr("\"dir\""));
    EXPECT_THAT(status.message(), HasSubstr("RLIMIT_NOFILE"));
    EXPECT_EQ(sub, -EMFILE);
    if (sub >= 0) ::close(sub);
  }
  // The portable walk's second descriptor (the directory opened at the end).
  absl::Status status;
  int sub;
  {
    testing::ScopedDescriptorLimit limit(1);
    status = Open("dir", Resolver::kPortable);
    sub = internal::OpenSubdirectoryNoFollow(root_.get(), "dir", Resolver::kPortable);
  }
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(sub, -EMFILE);
  if (sub >= 0) ::close(sub);
}

TEST(ErrnoStatusTest, DescriptorLimitsAreResourceExhaustedNamingTheLimit) {
  const absl::Status process = internal::ErrnoToStatus(EMFILE, "open", "a/b");
  EXPECT_EQ(process.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(process.message(),
            "open \"a/b\": too many open files (the process's descriptor limit, RLIMIT_NOFILE, is "
            "reached)");
  const absl::Status system = internal::ErrnoToStatus(ENFILE, "open", "a/b");
  EXPECT_EQ(system.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(system.message(), HasSubstr("fs.file-max"));
}

TEST_F(BeneathTest, Openat2EagainIsTriedABoundedNumberOfTimesThenThePortableWalkAnswers) {
  internal::SetOpenat2ForTesting(AlwaysEagain);
  ino_t inode = 0;
  EXPECT_TRUE(Open("dir", Resolver::kOpenat2, &inode).ok());
  EXPECT_EQ(inode, Inode(UniqueFd(::openat(root_.get(), "dir", O_RDONLY)).get()));
  EXPECT_EQ(fake_calls.load(), internal::kOpenat2MaxTries);

  // The fallback keeps the jail.
  fake_calls = 0;
  EXPECT_EQ(Open("dir/link_out", Resolver::kOpenat2).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(fake_calls.load(), internal::kOpenat2MaxTries);

  fake_calls = 0;
  const UniqueFd sub(internal::OpenSubdirectoryNoFollow(root_.get(), "dir", Resolver::kOpenat2));
  EXPECT_TRUE(sub.valid());
  EXPECT_EQ(fake_calls.load(), internal::kOpenat2MaxTries);
}

TEST_F(BeneathTest, Openat2EagainThatClearsIsAnsweredByOpenat2) {
  if (!internal::Openat2Available()) GTEST_SKIP() << "kernel without openat2";
  internal::SetOpenat2ForTesting(EagainThreeTimesThenReal);
  EXPECT_TRUE(Open("dir", Resolver::kOpenat2).ok());
  EXPECT_EQ(fake_calls.load(), 4);
}

TEST_F(BeneathTest, Openat2EintrIsTriedABoundedNumberOfTimesThenUnavailable) {
  internal::SetOpenat2ForTesting(AlwaysEintr);
  EXPECT_EQ(Open("dir", Resolver::kOpenat2).code(), StatusCode::kUnavailable);
  EXPECT_EQ(fake_calls.load(), internal::kOpenat2MaxTries);
  fake_calls = 0;
  EXPECT_EQ(internal::OpenSubdirectoryNoFollow(root_.get(), "dir", Resolver::kOpenat2), -EINTR);
  EXPECT_EQ(fake_calls.load(), internal::kOpenat2MaxTries);
}

// One thread renames a directory on the path back and forth (each rename also
// makes openat2 answer EAGAIN to a racing ".."); another resolves through it.
// Every lookup ends, finds the right directory or nothing, never escapes.
TEST_F(BeneathTest, LookupsRacingRenamesEndAndStayBeneathTheRoot) {
  tree_.Dir("p");
  tree_.Dir("p/s");
  tree_.Dir("p/s/t");
  tree_.Symlink("..", "p/s/up");
  tree_.Symlink("../../..", "p/s/out");
  const ino_t t = Inode(UniqueFd(::openat(root_.get(), "p/s/t", O_RDONLY)).get());
  real_eagains = 0;
  internal::SetOpenat2ForTesting(CountingOpenat2);

  for (Resolver resolver : Resolvers()) {
    SCOPED_TRACE(Name(resolver));
    std::atomic<bool> done{false};
    std::thread renamer([&] {
      const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      for (int i = 0; i < 2000 && std::chrono::steady_clock::now() < end; ++i) {
        if (::renameat(root_.get(), "p", root_.get(), "q") != 0 ||
            ::renameat(root_.get(), "q", root_.get(), "p") != 0) {
          ADD_FAILURE() << "rename: " << std::strerror(errno);
          break;
        }
      }
      done = true;
    });
    int lookups = 0;
    int found = 0;
    while (!done.load() && lookups < 1000000) {
      ++lookups;
      ino_t inode = 0;
      const absl::Status in = Open("p/s/up/s/t", resolver, &inode);
      if (in.ok()) {
        ++found;
        EXPECT_EQ(inode, t);
      } else {
        EXPECT_EQ(in.code(), StatusCode::kNotFound) << in;
      }
      const absl::Status out = Open("p/s/out", resolver);
      EXPECT_TRUE(out.code() == StatusCode::kPermissionDenied ||
                  out.code() == StatusCode::kNotFound)
          << out;
    }
    renamer.join();
    ::testing::Test::RecordProperty(std::string(Name(resolver)) + "_lookups", lookups);
    ::testing::Test::RecordProperty(std::string(Name(resolver)) + "_found", found);
    EXPECT_GT(lookups, 0);
  }
  ::testing::Test::RecordProperty("openat2_eagains", real_eagains.load());
  std::printf("openat2 answered EAGAIN %d times\n", real_eagains.load());
}

// A scope narrows the root: paths beneath it open on both resolvers, paths
// beside it and links out of it are refused, and errors name the caller's path.
TEST_F(BeneathTest, AScopeIsARootOfItsOwnForLinksAndPaths) {
  tree_.Dir("projects");
  tree_.Dir("projects/a");
  tree_.Dir("projects/a/sub");
  tree_.Dir("projects/b");
  tree_.Symlink("../b", "projects/a/to_b");            // inside the root, outside the scope
  tree_.Symlink("sub", "projects/a/to_sub");           // inside the scope
  tree_.Symlink("../a/sub", "projects/a/round_trip");  // leaves the scope, comes back
  for (const Resolver resolver : Resolvers()) {
    SCOPED_TRACE(Name(resolver));
    const auto open = [&](std::string_view scope, const std::string& path) {
      return internal::OpenDirectoryInScope(root_.get(), scope, path, resolver).status();
    };
    EXPECT_TRUE(open("projects/a", "projects/a").ok());
    EXPECT_TRUE(open("projects/a", "projects/a/sub").ok());
    EXPECT_TRUE(open("projects/a", "projects/a/to_sub").ok());
    EXPECT_TRUE(open("./projects//a/", "projects/a/sub").ok());  // the scope is cleaned
    EXPECT_TRUE(open("", "projects/b").ok());                    // no scope: the root
    EXPECT_TRUE(open("projects/a", "projects/a/to_b").code() == StatusCode::kPermissionDenied);
    EXPECT_TRUE(open("projects/a", "projects/a/round_trip").code() ==
                StatusCode::kPermissionDenied);
    // Without a scope the same link is fine: it stays beneath the root.
    EXPECT_TRUE(open("", "projects/a/to_b").ok());
    const absl::Status beside = open("projects/a", "projects/b");
    EXPECT_EQ(beside.code(), StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(beside.message()), HasSubstr("outside this caller's scope"));
    EXPECT_EQ(open("projects/a", "projects").code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(open("projects/a", "").code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(open("projects/a", "projects/ab").code(), StatusCode::kPermissionDenied);
    const absl::Status via_link = open("projects/a", "projects/a/to_b");
    EXPECT_THAT(std::string(via_link.message()),
                HasSubstr("\"projects/a/to_b\": resolves outside this caller's scope"));
    const absl::Status missing = open("projects/a", "projects/a/none");
    EXPECT_EQ(missing.code(), StatusCode::kNotFound);
    EXPECT_THAT(std::string(missing.message()), HasSubstr("\"projects/a/none\""));
    EXPECT_EQ(open("../x", "projects").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(open("projects/none", "projects/none/x").code(), StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace filemesh
