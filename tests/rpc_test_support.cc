#include "rpc_test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace filemesh::testing {
namespace {

int BindLoopback(int* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("bind loopback");
    std::abort();
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

int UnusedLoopbackPort() {
  int port = 0;
  ::close(BindLoopback(&port));
  return port;
}

BlackholeServer::BlackholeServer() {
  fd_ = BindLoopback(&port_);
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
  options.amqp_url = amqp_url;
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
