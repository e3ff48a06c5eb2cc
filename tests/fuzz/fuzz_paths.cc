// Request paths against a generated tree: CleanRelativePath, then the jail
// resolver (both resolvers, with and without a scope). Whatever the path,
// the directory opened lies beneath the root (and beneath the scope).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fs/beneath.h"
#include "fs/entry.h"

namespace {

// root/{a/{b,up->..,out->../..,abs->/etc,loop->loop},c->a/b,s/x}
int MakeTree() {
  char name[] = "/tmp/filemesh-fuzz-paths-XXXXXX";
  if (::mkdtemp(name) == nullptr) std::abort();
  const std::string root = name;
  ::mkdir((root + "/a").c_str(), 0755);
  ::mkdir((root + "/a/b").c_str(), 0755);
  ::mkdir((root + "/s").c_str(), 0755);
  ::mkdir((root + "/s/x").c_str(), 0755);
  (void)!::symlink("..", (root + "/a/up").c_str());
  (void)!::symlink("../..", (root + "/a/out").c_str());
  (void)!::symlink("/etc", (root + "/a/abs").c_str());
  (void)!::symlink("loop", (root + "/a/loop").c_str());
  (void)!::symlink("a/b", (root + "/c").c_str());
  (void)!::symlink("../a", (root + "/s/x/back").c_str());
  const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) std::abort();
  return fd;
}

void Check(int root_fd, std::string_view scope, const std::string& path,
           filemesh::internal::Resolver resolver) {
  auto dir = filemesh::internal::OpenDirectoryInScope(root_fd, scope, path, resolver);
  if (!dir.ok()) return;
  const auto depth = filemesh::internal::DepthBelow(root_fd, dir->get());
  if (!depth.has_value()) {
    std::fprintf(stderr, "opened a directory outside the root: \"%s\"\n", path.c_str());
    std::abort();
  }
  if (!scope.empty()) {
    auto scope_fd = filemesh::internal::OpenDirectoryBeneath(root_fd, std::string(scope));
    if (scope_fd.ok() && !filemesh::internal::DepthBelow(scope_fd->get(), dir->get())) {
      std::fprintf(stderr, "left the scope \"%s\": \"%s\"\n", std::string(scope).c_str(),
                   path.c_str());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int root_fd = MakeTree();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto clean = filemesh::internal::CleanRelativePath(input);
  if (!clean.ok()) return 0;
  if (clean->find("//") != std::string::npos || (!clean->empty() && clean->front() == '/')) {
    std::abort();  // not clean
  }
  for (const auto resolver :
       {filemesh::internal::Resolver::kPortable, filemesh::internal::Resolver::kAuto}) {
    Check(root_fd, "", *clean, resolver);
    Check(root_fd, "a", *clean, resolver);
    Check(root_fd, "s/x", *clean, resolver);
  }
  return 0;
}
