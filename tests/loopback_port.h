// Loopback ports for test servers, below the kernel's ephemeral range, and
// raw connections to them.
//
// A server bound to port 0 gets a port from the ephemeral range, where any
// outgoing connection may take it while the server is down: a test that
// stops and restarts a server on the same port would then find it taken.
// Ports below the range are only ever used by listeners that ask for them.

#ifndef FILEMESH_TESTS_LOOPBACK_PORT_H_
#define FILEMESH_TESTS_LOOPBACK_PORT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

namespace filemesh::testing {

// The first port of Linux's ephemeral range (32768 when it cannot be read).
inline int EphemeralPortLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (!(in >> low) || low <= 20000) return 32768;
  return low;
}

// A socket bound to 127.0.0.1 on a free port in [20000, ephemeral low),
// picked at random so that test binaries run in parallel rarely collide;
// its port in *port. Aborts when none is found.
inline int BindLowLoopbackPort(int* port) {
  static std::mt19937 random(std::random_device{}());
  const int high = EphemeralPortLow() - 1;
  std::uniform_int_distribution<int> pick(20000, high);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int candidate = pick(random);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(candidate));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      *port = candidate;
      return fd;
    }
    ::close(fd);
  }
  std::perror("no free loopback port below the ephemeral range");
  std::abort();
}

// A free loopback port below the ephemeral range (bound, then released).
inline int FreeLoopbackPort() {
  int port = 0;
  ::close(BindLowLoopbackPort(&port));
  return port;
}

// "127.0.0.1:<FreeLoopbackPort()>": a listen address for a test server.
inline std::string LoopbackListenAddress() {
  return "127.0.0.1:" + std::to_string(FreeLoopbackPort());
}

// A TCP connection to 127.0.0.1:port, or -1. With `receive_timeout_seconds`
// a read waits at most that long (to bound a failure, never to wait for
// something).
inline int ConnectLoopback(int port, int receive_timeout_seconds = 0) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  if (receive_timeout_seconds > 0) {
    const timeval limit{receive_timeout_seconds, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  }
  return fd;
}

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_LOOPBACK_PORT_H_
