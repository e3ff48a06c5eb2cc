#include "filemesh/service/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace filemesh {

std::string HostWithoutPort(std::string_view host_port) {
  std::string_view host = host_port;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    host = close == std::string_view::npos ? host.substr(1) : host.substr(1, close - 1);
  } else if (const size_t colon = host.find(':');
             colon != std::string_view::npos &&
             host.find(':', colon + 1) == std::string_view::npos) {
    host = host.substr(0, colon);  // one colon: host:port (more: a bare IPv6 address)
  }
  return absl::AsciiStrToLower(absl::string_view(host.data(), host.size()));
}

bool IsLoopbackListenAddress(std::string_view listen) {
  const absl::string_view text(listen.data(), listen.size());
  if (absl::StartsWith(text, "unix:") || absl::StartsWith(text, "unix-abstract:")) return true;
  const std::string host = HostWithoutPort(listen);
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace filemesh
