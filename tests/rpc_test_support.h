// Helpers for the rpc tests: a served sample tree, loopback ports.

#ifndef FILEMESH_TESTS_RPC_TEST_SUPPORT_H_
#define FILEMESH_TESTS_RPC_TEST_SUPPORT_H_

#include <memory>
#include <string>

#include "filemesh/file_lister.hpp"
#include "filemesh/file_searcher.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "loopback_port.h"
#include "test_tree.h"

namespace filemesh::testing {

// A loopback port nothing listens on (bound, then released), below the
// ephemeral range.
int UnusedLoopbackPort();

// A TCP listener on 127.0.0.1 that completes handshakes (the kernel's
// backlog) but never reads or answers: a server that hangs.
class BlackholeServer {
 public:
  BlackholeServer();
  ~BlackholeServer();
  BlackholeServer(const BlackholeServer&) = delete;
  BlackholeServer& operator=(const BlackholeServer&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A tree with a few entries, and a lister and searcher over it.
struct SampleService {
  SampleService();
  TestTree tree;
  std::unique_ptr<FileLister> lister;
  std::unique_ptr<FileSearcher> searcher;
};

// Starts a host serving `service` on gRPC at `listen` (LoopbackListenAddress()
// for a free port) and/or AMQP at `amqp_url`; aborts the test binary if it cannot.
std::unique_ptr<ServiceHost> StartHost(const SampleService& service, const std::string& listen,
                                       const std::string& amqp_url = "");

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_RPC_TEST_SUPPORT_H_
