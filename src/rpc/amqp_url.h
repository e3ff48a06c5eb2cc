// AMQP URLs: "amqp[s]://user:pass@host:port/vhost[?auth_mechanism=external]",
// parsed once, printed safely.

#ifndef FILEMESH_SRC_RPC_AMQP_URL_H_
#define FILEMESH_SRC_RPC_AMQP_URL_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace filemesh::internal {

struct AmqpUrl {
  // amqps: TLS (default port 5671).
  bool tls = false;
  // ?auth_mechanism=external (amqps only): log in with the SASL EXTERNAL
  // mechanism, the broker taking the user from the client certificate.
  bool external_auth = false;
  std::string user = "guest";
  std::string password = "guest";
  std::string host = "localhost";  // without brackets for IPv6
  int port = 5672;
  std::string vhost = "/";

  // The URL in full: "amqp[s]://user[:password]@host:port/vhost[?...]",
  // user, password and vhost percent-encoded, an IPv6 host in brackets.
  std::string ToString() const;
  // ToString() through RedactUrl (filemesh/service/log.hpp): the password
  // replaced by "***" (or left out when empty), for logs and error messages.
  std::string Redacted() const;
};

// Parses `url` as "amqp[s]://[user[:password]@]host[:port][/vhost][?query]".
//  - amqps is AMQP over TLS.
//  - user, password and vhost are percent-decoded; user and password default
//    to guest/guest (RabbitMQ's loopback-only default user).
//  - host is a name, an IPv4 address or a bracketed IPv6 address ("[::1]").
//  - port defaults to 5672 (amqps: 5671) and must be 1..65535.
//  - no path, or "/", is the default vhost "/"; "/%2f" is "/" too; a vhost
//    may not hold an unencoded "/".
//  - the query may only be "auth_mechanism=external" or
//    "auth_mechanism=plain" (RabbitMQ's URI query parameter; external needs
//    amqps).
// InvalidArgument (naming the part at fault, never the password) for
// anything else, including other query parameters and fragments.
absl::StatusOr<AmqpUrl> ParseAmqpUrl(std::string_view url);

// The brokers of one cluster a URL list names: AmqpOptions::url.
inline constexpr size_t kMaxAmqpUrls = 16;

// Parses "URL[,URL...]" (spaces around a comma allowed; a comma inside a
// password must be written %2C): at least one, at most kMaxAmqpUrls, each as
// ParseAmqpUrl takes it. All name nodes of one cluster, logged into the same
// way: the same scheme, user, password, vhost and auth mechanism, and no
// node twice. InvalidArgument naming the URL at fault (its position) otherwise.
absl::StatusOr<std::vector<AmqpUrl>> ParseAmqpUrls(std::string_view urls);

// "URL, URL, ..." through AmqpUrl::Redacted, for messages.
std::string RedactedUrls(const std::vector<AmqpUrl>& urls);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_RPC_AMQP_URL_H_
