// Bytes a client sends, through the HTTP server's own parser and limits: one
// HttpServer on loopback, one connection per input (sent whole, then
// half-closed). The server answers with a well-formed HTTP/1.1 response or
// closes, within its timeouts: never a crash, never a hang.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "filemesh/rest/http_server.hpp"
#include "filemesh/service/log.hpp"

namespace {

filemesh::HttpServer* Server() {
  static filemesh::HttpServer* const server = [] {
    filemesh::SetMinLogLevel(filemesh::LogLevel::kError);
    filemesh::HttpServerOptions options;
    options.listen = "127.0.0.1:0";
    options.io_threads = 1;
    options.max_head_bytes = 2048;
    options.max_target_bytes = 512;
    options.max_header_fields = 16;
    options.max_body_bytes = 4096;
    options.head_timeout = absl::Milliseconds(100);
    options.body_timeout = absl::Milliseconds(100);
    options.idle_timeout = absl::Milliseconds(100);
    options.write_timeout = absl::Milliseconds(500);
    auto* made = new filemesh::HttpServer(options);
    const absl::Status started = made->Start([](const filemesh::HttpRequest& request) {
      std::string body = request.method + " " + request.path;
      for (const auto& [name, value] : request.query) body += "\n" + name + "=" + value;
      return filemesh::HttpResponse{200, "text/plain", body, {}};
    });
    if (!started.ok()) std::abort();
    return made;
  }();
  return server;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  filemesh::HttpServer* server = Server();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(server->port()));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return 0;
  }
  const timeval limit{5, 0};  // far past every timeout of the server
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  size_t sent = 0;
  while (sent < size) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  const bool hung = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  ::close(fd);
  if (hung) {
    std::fprintf(stderr, "the server neither answered nor closed within 5 s\n");
    std::abort();
  }
  if (!reply.empty() && reply.compare(0, 9, "HTTP/1.1 ") != 0) {
    std::fprintf(stderr, "not an HTTP/1.1 response: %.200s\n", reply.c_str());
    std::abort();
  }
  return 0;
}
