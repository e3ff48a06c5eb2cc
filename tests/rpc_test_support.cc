#include "rpc_test_support.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace filemesh::testing {

int UnusedLoopbackPort() { return FreeLoopbackPort(); }

BlackholeServer::BlackholeServer() {
  fd_ = BindLowLoopbackPort(&port_);
  if (::listen(fd_, 64) != 0) {
    std::perror("listen");
    std::abort();
  }
}

BlackholeServer::~BlackholeServer() { ::close(fd_); }

SampleService::SampleService() {
  tree.Dir("docs");
  tree.File("docs/a.txt", 10);
  tree.File("docs/b.md", 20);
  tree.Dir("src");
  tree.File("src/main.cc", 30);
  lister = std::make_unique<FileLister>(tree.root());
  searcher = std::make_unique<FileSearcher>(tree.root());
}

std::unique_ptr<ServiceHost> StartHost(const SampleService& service, const std::string& listen,
                                       const std::string& amqp_url) {
  ServiceHostOptions options;
  options.grpc_listen = listen;
  options.amqp.url = amqp_url;
  options.threads = 4;
  auto host = std::make_unique<ServiceHost>(options);
  host->AddFileLister(*service.lister);
  host->AddFileSearcher(*service.searcher);
  const absl::Status status = host->Start();
  if (!status.ok()) {
    std::fprintf(stderr, "cannot start host on %s: %s\n", listen.c_str(),
                 status.ToString().c_str());
    std::abort();
  }
  return host;
}

}  // namespace filemesh::testing
