#include "rpc/amqp_url.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/absl_compat.h"
#include "base/percent_encoding.h"
#include "filemesh/service/log.hpp"

namespace filemesh::internal {
namespace {

constexpr std::string_view kScheme = "amqp://";
constexpr std::string_view kTlsScheme = "amqps://";

absl::Status Bad(std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid AMQP URL: ", AbslView(why)));
}

bool IsHostNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string AmqpUrl::ToString() const {
  std::string out(tls ? kTlsScheme : kScheme);
  if (!external_auth) {  // EXTERNAL: the user is the client certificate's
    absl::StrAppend(&out, PercentEncode(user));
    if (!password.empty()) absl::StrAppend(&out, ":", PercentEncode(password));
    absl::StrAppend(&out, "@");
  }
  if (host.find(':') != std::string::npos) {
    absl::StrAppend(&out, "[", host, "]");
  } else {
    absl::StrAppend(&out, host);
  }
  absl::StrAppend(&out, ":", port, "/", PercentEncode(vhost));
  if (external_auth) absl::StrAppend(&out, "?auth_mechanism=external");
  return out;
}

std::string AmqpUrl::Redacted() const { return RedactUrl(ToString()); }

namespace {

// "user[:password]" into `out`.
absl::Status ParseUserInfo(std::string_view userinfo, AmqpUrl* out) {
  const size_t colon = userinfo.find(':');
  if (!PercentDecode(userinfo.substr(0, colon), /*plus_is_space=*/false, &out->user)) {
    return Bad("malformed %-escape in the user name");
  }
  if (out->user.empty()) return Bad("empty user name before '@'");
  if (colon == std::string_view::npos) {
    out->password.clear();
  } else if (!PercentDecode(userinfo.substr(colon + 1), /*plus_is_space=*/false, &out->password)) {
    // Never echo any part of the password.
    return Bad("malformed %-escape in the password");
  }
  return absl::OkStatus();
}

// "[v6]" or "[v6]:port" into out->host and `*port_text`.
absl::Status ParseBracketedHost(std::string_view authority, AmqpUrl* out,
                                std::string_view* port_text) {
  const size_t close = authority.find(']');
  if (close == std::string_view::npos) return Bad("unclosed '[' in the host");
  out->host = std::string(authority.substr(1, close - 1));
  if (out->host.empty()) return Bad("empty IPv6 address");
  for (char c : out->host) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
      return Bad(absl::StrCat("bad IPv6 address \"", out->host, "\""));
    }
  }
  std::string_view after = authority.substr(close + 1);
  if (!after.empty()) {
    if (after[0] != ':') return Bad("unexpected text after the IPv6 address");
    *port_text = after.substr(1);
    if (port_text->empty()) return Bad("empty port after ':'");
  }
  return absl::OkStatus();
}

// "host" or "host:port" (a name or an IPv4 address) into out->host and
// `*port_text`.
absl::Status ParseNamedHost(std::string_view authority, AmqpUrl* out, std::string_view* port_text) {
  const size_t colon = authority.find(':');
  out->host = std::string(authority.substr(0, colon));
  if (colon != std::string_view::npos) {
    *port_text = authority.substr(colon + 1);
    if (port_text->empty()) return Bad("empty port after ':'");
  }
  if (out->host.empty()) return Bad("missing host");
  for (char c : out->host) {
    if (!IsHostNameChar(c)) return Bad(absl::StrCat("bad character in host \"", out->host, "\""));
  }
  return absl::OkStatus();
}

// 1..65535, digits only.
absl::Status ParsePort(std::string_view text, int* port) {
  int value = 0;
  bool digits = true;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || value > 65535) {
      digits = false;
      break;
    }
    value = value * 10 + (c - '0');
  }
  if (!digits || value < 1 || value > 65535) {
    return Bad(absl::StrCat("port \"", AbslView(text), "\" is not a number in 1..65535"));
  }
  *port = value;
  return absl::OkStatus();
}

// "userinfo@host:port" into `out`.
absl::Status ParseAuthority(std::string_view authority, AmqpUrl* out) {
  const size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    if (absl::Status status = ParseUserInfo(authority.substr(0, at), out); !status.ok()) {
      return status;
    }
    authority = authority.substr(at + 1);
  }
  std::string_view port_text;
  absl::Status host = !authority.empty() && authority[0] == '['
                          ? ParseBracketedHost(authority, out, &port_text)
                          : ParseNamedHost(authority, out, &port_text);
  if (!host.ok()) return host;
  return port_text.empty() ? absl::OkStatus() : ParsePort(port_text, &out->port);
}

// The path after the authority's '/': the vhost. "", "/" and no path all
// mean the default vhost.
absl::Status ParseVhost(std::string_view path, AmqpUrl* out) {
  if (path.empty()) return absl::OkStatus();
  if (path.find('/') != std::string_view::npos) {
    return Bad("the vhost may not contain '/' (write it as %2F)");
  }
  if (!PercentDecode(path, /*plus_is_space=*/false, &out->vhost)) {
    return Bad("malformed %-escape in the vhost");
  }
  if (out->vhost.empty()) out->vhost = "/";
  return absl::OkStatus();
}

// The query after '?': RabbitMQ's auth_mechanism parameter only.
absl::Status ParseQuery(std::string_view query, AmqpUrl* out) {
  if (query == "auth_mechanism=external") {
    if (!out->tls) return Bad("auth_mechanism=external needs amqps:// (a client certificate)");
    out->external_auth = true;
    return absl::OkStatus();
  }
  if (query == "auth_mechanism=plain") return absl::OkStatus();
  return Bad("the only query parameter taken is auth_mechanism=external or =plain");
}

}  // namespace

absl::StatusOr<AmqpUrl> ParseAmqpUrl(std::string_view url) {
  AmqpUrl out;
  std::string_view rest;
  if (url.substr(0, kTlsScheme.size()) == kTlsScheme) {
    out.tls = true;
    out.port = 5671;
    rest = url.substr(kTlsScheme.size());
  } else if (url.substr(0, kScheme.size()) == kScheme) {
    rest = url.substr(kScheme.size());
  } else {
    return Bad("must start with \"amqp://\" or \"amqps://\"");
  }
  if (rest.find('#') != std::string_view::npos) return Bad("fragments are not supported");
  for (char c : rest) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Bad("contains a space or a control character");
    }
  }
  if (const size_t question = rest.find('?'); question != std::string_view::npos) {
    if (absl::Status query = ParseQuery(rest.substr(question + 1), &out); !query.ok()) {
      return query;
    }
    rest = rest.substr(0, question);
  }
  const size_t slash = rest.find('/');
  if (absl::Status status = ParseAuthority(rest.substr(0, slash), &out); !status.ok()) {
    return status;
  }
  if (slash != std::string_view::npos) {
    if (absl::Status status = ParseVhost(rest.substr(slash + 1), &out); !status.ok()) return status;
  }
  return out;
}

absl::StatusOr<std::vector<AmqpUrl>> ParseAmqpUrls(std::string_view urls) {
  std::vector<AmqpUrl> out;
  const std::vector<absl::string_view> parts = absl::StrSplit(AbslView(urls), ',');
  if (parts.size() > kMaxAmqpUrls) {
    return Bad(absl::StrCat("a list of ", parts.size(), " URLs; at most ", kMaxAmqpUrls,
                            " brokers of one cluster are taken"));
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    const absl::string_view part = absl::StripAsciiWhitespace(parts[i]);
    if (part.empty()) {
      return Bad(parts.size() == 1 ? std::string("empty")
                                   : absl::StrCat("URL ", i + 1, " of the list is empty"));
    }
    absl::StatusOr<AmqpUrl> url = ParseAmqpUrl(StdView(part));
    if (!url.ok()) {
      if (parts.size() == 1) return url.status();
      return absl::InvalidArgumentError(
          absl::StrCat("URL ", i + 1, " of the list: ", url.status().message()));
    }
    if (!out.empty()) {
      const AmqpUrl& first = out.front();
      if (url->tls != first.tls || url->external_auth != first.external_auth ||
          url->user != first.user || url->password != first.password || url->vhost != first.vhost) {
        return Bad(absl::StrCat("URL ", i + 1,
                                " of the list differs from the first in its scheme, user, "
                                "password, vhost or auth mechanism: the URLs name nodes of one "
                                "cluster, logged into the same way"));
      }
      for (const AmqpUrl& seen : out) {
        if (seen.host == url->host && seen.port == url->port) {
          return Bad(absl::StrCat("URL ", i + 1, " of the list names ", url->host, ":", url->port,
                                  " again"));
        }
      }
    }
    out.push_back(*std::move(url));
  }
  return out;
}

std::string RedactedUrls(const std::vector<AmqpUrl>& urls) {
  return absl::StrJoin(urls, ", ",
                       [](std::string* out, const AmqpUrl& url) { out->append(url.Redacted()); });
}

}  // namespace filemesh::internal
