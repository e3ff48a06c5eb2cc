// Loopback checks for listen addresses: what a service may serve without TLS
// or keys because nobody else on the network can reach it.
#ifndef FILEMESH_SERVICE_ADDRESS_HPP_
#define FILEMESH_SERVICE_ADDRESS_HPP_

#include <string>
#include <string_view>

namespace filemesh {

// Whether the host of `listen` ("host:port", "[v6]:port", a bare host, or
// "unix:PATH") is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z),
// the name "localhost", or a unix socket. Wildcards (0.0.0.0, [::]) and
// other names are not.
bool IsLoopbackListenAddress(std::string_view listen);

// The host of an HTTP Host header value or a listen address, lower-cased,
// without its port and without brackets ("[::1]:8080" -> "::1").
std::string HostWithoutPort(std::string_view host_port);

}  // namespace filemesh

#endif  // FILEMESH_SERVICE_ADDRESS_HPP_
