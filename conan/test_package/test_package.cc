// Lists a directory with filemesh::FileLister (fs) and, with the rpc
// component, again through FailoverChannel and FileListerClient over the
// in-process transport (rpc, testing), and logs it (service).
//
//   test_package DIR      (DIR must hold test_package.cc)

#include <cstdio>
#include <memory>
#include <string>

#include "filemesh/file_lister.hpp"
#include "filemesh/version.hpp"
#ifdef FILEMESH_TEST_RPC
#include "filemesh/rpc/clients.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/service/log.hpp"
#include "filemesh/testing/in_memory_transport.hpp"
#endif

namespace {

// The number of entries `response` holds, or -1 when test_package.cc is not
// one of them.
int CountWithSelf(const filemesh::v1::ListResponse& response) {
  bool self = false;
  for (const auto& entry : response.entries()) {
    self = self || entry.path() == "test_package.cc";
  }
  return self ? response.entries_size() : -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  filemesh::FileLister lister(argv[1]);
  filemesh::v1::ListRequest request;
  request.set_page_size(100);

  auto page = lister.List(request);
  if (!page.ok()) {
    std::fprintf(stderr, "fs: %s\n", page.status().ToString().c_str());
    return 1;
  }
  const int entries = CountWithSelf(*page);
  if (entries < 0) {
    std::fprintf(stderr, "fs: no test_package.cc in %s\n", argv[1]);
    return 1;
  }
  std::printf("filemesh %s test_package: fs listed %d entries\n", FILEMESH_VERSION_STRING, entries);

#ifdef FILEMESH_TEST_RPC
  auto transport = std::make_unique<filemesh::testing::InMemoryTransport>();
  transport->ServeFileLister(lister);
  auto channel = std::make_shared<filemesh::FailoverChannel>(std::move(transport), nullptr,
                                                             filemesh::FailoverPolicy{});
  filemesh::FileListerClient client(channel);
  auto remote = client.List(request);
  if (!remote.ok() || CountWithSelf(*remote) != entries) {
    std::fprintf(stderr, "rpc: %s\n",
                 remote.ok() ? "a different listing" : remote.status().ToString().c_str());
    return 1;
  }
  filemesh::LogEvent("test_package_listed", {{"entries", std::to_string(entries)}});
  std::printf("filemesh %s test_package: rpc listed %d entries, service logged it\n",
              FILEMESH_VERSION_STRING, entries);
#endif
  std::printf("filemesh test_package: OK\n");
  return 0;
}
