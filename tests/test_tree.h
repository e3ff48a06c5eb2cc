// Test helpers: a temporary directory tree that removes itself, and a scope
// that makes file permissions apply even when the tests run as root.

#ifndef FILEMESH_TESTS_TEST_TREE_H_
#define FILEMESH_TESTS_TEST_TREE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace filemesh::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when the object dies (also entries made unreadable, and paths longer than
// PATH_MAX). Each helper aborts the test binary on failure: a tree that was
// not built as asked would make every assertion after it meaningless.
class TestTree {
 public:
  TestTree();
  ~TestTree();
  TestTree(const TestTree&) = delete;
  TestTree& operator=(const TestTree&) = delete;

  const std::string& root() const { return root_; }
  std::string Abs(const std::string& rel) const { return root_ + "/" + rel; }

  // Parents must exist. `rel` may hold any bytes but NUL.
  void Dir(const std::string& rel, unsigned mode = 0755);
  void File(const std::string& rel, size_t size = 0);
  void Symlink(const std::string& target, const std::string& rel);
  void Fifo(const std::string& rel);
  // Sets the modification time of `rel` (not following links).
  void SetMtime(const std::string& rel, int64_t seconds);
  void Chmod(const std::string& rel, unsigned mode);
  void Remove(const std::string& rel);

  // Makes `depth` nested directories named `name` under `rel` ("" is the root)
  // with file `leaf` in the innermost, working with fds so the total path may
  // exceed PATH_MAX. Returns the innermost directory's path relative to root.
  std::string DeepChain(const std::string& rel, const std::string& name, int depth,
                        const std::string& leaf);

 private:
  std::string root_;
};

// While alive, the calling thread (and threads it starts) lacks
// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so mode bits are enforced for
// root as for anyone. A no-op for other users.
class ScopedEnforcePermissions {
 public:
  ScopedEnforcePermissions();
  ~ScopedEnforcePermissions();
  ScopedEnforcePermissions(const ScopedEnforcePermissions&) = delete;
  ScopedEnforcePermissions& operator=(const ScopedEnforcePermissions&) = delete;

 private:
  bool dropped_ = false;
  uint32_t saved_effective_[2] = {0, 0};
};

// While alive, the process can open exactly `spare` more descriptors: the
// soft RLIMIT_NOFILE is lowered to the number the (spare + 1)-th new one would
// get (the kernel hands out the lowest free number, and refuses numbers at or
// above the limit). Restored on destruction; the process must not open or
// close other descriptors meanwhile for the count to hold.
class ScopedDescriptorLimit {
 public:
  explicit ScopedDescriptorLimit(int spare);
  ~ScopedDescriptorLimit();
  ScopedDescriptorLimit(const ScopedDescriptorLimit&) = delete;
  ScopedDescriptorLimit& operator=(const ScopedDescriptorLimit&) = delete;

 private:
  uint64_t saved_soft_ = 0;
};

// Descriptors the process has open now (entries of /proc/self/fd).
int OpenDescriptorCount();

// True in the ASan/UBSan build, whose runtime needs a free descriptor of its
// own for some checks (UBSan's vptr check on a cache miss probes memory
// through a pipe, and reports a false error when it cannot make one): tests
// that call virtual functions with no descriptor left skip there.
constexpr bool kSanitizerNeedsDescriptors =
#if defined(__SANITIZE_ADDRESS__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

// Sorted, exact paths of a list of entries (for comparisons).
template <typename Entries>
std::vector<std::string> Paths(const Entries& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.raw_path().empty() ? e.path() : e.raw_path());
  return out;
}

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_TEST_TREE_H_
