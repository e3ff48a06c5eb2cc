// Protobuf requests as the services decode them (any bytes), run by
// FileLister and FileSearcher over a small tree with a short deadline, as a
// service would: an answer or a status, never a crash.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/time/clock.h"
#include "filemesh/file_lister.hpp"
#include "filemesh/file_searcher.hpp"
#include "google/protobuf/stubs/logging.h"

namespace {

std::string MakeTree() {
  char name[] = "/tmp/filemesh-fuzz-requests-XXXXXX";
  if (::mkdtemp(name) == nullptr) std::abort();
  const std::string root = name;
  for (const char* dir : {"/a", "/a/b", "/c", "/.h"}) ::mkdir((root + dir).c_str(), 0755);
  for (const char* file : {"/a/x.txt", "/a/b/y.md", "/c/z", "/.h/w", "/top.cc"}) {
    const int fd = ::open((root + file).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
  }
  (void)!::symlink("..", (root + "/a/up").c_str());
  (void)!::symlink("/etc", (root + "/c/abs").c_str());
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Strings that are not UTF-8 are refused by the parser, which logs each.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  static const std::string root = MakeTree();
  static const filemesh::FileLister lister(root, [] {
    filemesh::FileListerOptions o;
    o.redact_outside_targets = true;
    return o;
  }());
  static const filemesh::FileSearcher searcher(root, [] {
    filemesh::FileSearcherOptions o;
    o.threads = 1;
    o.redact_outside_targets = true;
    o.max_regex_memory = 1 << 20;
    return o;
  }());
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(50);
  filemesh::v1::ListRequest list;
  if (list.ParseFromString(bytes)) (void)lister.List(list, deadline);
  filemesh::v1::SearchRequest search;
  if (search.ParseFromString(bytes)) (void)searcher.Search(search, deadline);
  return 0;
}
