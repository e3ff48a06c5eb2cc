#include "rpc/amqp_url.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "base/absl_compat.h"
#include "base/percent_encoding.h"
#include "filemesh/service/log.hpp"

namespace filemesh::internal {
namespace {

constexpr std::string_view kScheme = "amqp://";

absl::Status Bad(std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid AMQP URL: ", AbslView(why)));
}

bool IsHostNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string AmqpUrl::ToString() const {
  std::string out(kScheme);
  absl::StrAppend(&out, PercentEncode(user));
  if (!password.empty()) absl::StrAppend(&out, ":", PercentEncode(password));
  absl::StrAppend(&out, "@");
  if (host.find(':') != std::string::npos) {
    absl::StrAppend(&out, "[", host, "]");
  } else {
    absl::StrAppend(&out, host);
  }
  absl::StrAppend(&out, ":", port, "/", PercentEncode(vhost));
  return out;
}

std::string AmqpUrl::Redacted() const { return RedactUrl(ToString()); }

absl::StatusOr<AmqpUrl> ParseAmqpUrl(std::string_view url) {
  if (url.substr(0, 8) == "amqps://") {
    return Bad("amqps (TLS) is not supported; use amqp://");
  }
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Bad("must start with \"amqp://\"");
  }
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return Bad("query strings and fragments are not supported");
  }
  for (char c : rest) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Bad("contains a space or a control character");
    }
  }

  AmqpUrl out;
  // Authority and path.
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const bool has_path = slash != std::string_view::npos;
  std::string_view path = has_path ? rest.substr(slash + 1) : std::string_view();

  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const size_t colon = userinfo.find(':');
    std::string_view user = userinfo.substr(0, colon);
    if (!PercentDecode(user, /*plus_is_space=*/false, &out.user))
      return Bad("malformed %-escape in the user name");
    if (out.user.empty()) return Bad("empty user name before '@'");
    if (colon == std::string_view::npos) {
      out.password.clear();
    } else if (!PercentDecode(userinfo.substr(colon + 1), /*plus_is_space=*/false, &out.password)) {
      // Never echo any part of the password.
      return Bad("malformed %-escape in the password");
    }
  }

  // Host, then port.
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Bad("unclosed '[' in the host");
    out.host = std::string(authority.substr(1, close - 1));
    if (out.host.empty()) return Bad("empty IPv6 address");
    for (char c : out.host) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return Bad(absl::StrCat("bad IPv6 address \"", out.host, "\""));
      }
    }
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Bad("unexpected text after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return Bad("empty port after ':'");
    }
  } else {
    const size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Bad("empty port after ':'");
    }
    if (out.host.empty()) return Bad("missing host");
    for (char c : out.host) {
      if (!IsHostNameChar(c)) return Bad(absl::StrCat("bad character in host \"", out.host, "\""));
    }
  }
  if (!port_text.empty()) {
    int port = 0;
    for (char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || port > 65535) {
        return Bad(absl::StrCat("port \"", AbslView(port_text), "\" is not a number in 1..65535"));
      }
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) {
      return Bad(absl::StrCat("port \"", AbslView(port_text), "\" is not a number in 1..65535"));
    }
    out.port = port;
  }

  // Vhost: "", "/" and no path all mean the default vhost.
  if (has_path && !path.empty()) {
    if (path.find('/') != std::string_view::npos) {
      return Bad("the vhost may not contain '/' (write it as %2F)");
    }
    if (!PercentDecode(path, /*plus_is_space=*/false, &out.vhost))
      return Bad("malformed %-escape in the vhost");
    if (out.vhost.empty()) out.vhost = "/";
  }
  return out;
}

}  // namespace filemesh::internal
