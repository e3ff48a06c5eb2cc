#include "cli/remote.h"

#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/absl_compat.h"
#include "base/percent_encoding.h"
#include "filemesh/version.hpp"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace filemesh::cli {
namespace {

constexpr std::string_view kOperationsPrefix = "/api/v1/operations/";
// One HTTP exchange never takes longer than this: the gateway answers within
// its request timeout (a 202 when the call waits on the broker).
constexpr absl::Duration kMaxExchange = absl::Seconds(60);
constexpr absl::Duration kPollEvery = absl::Seconds(1);

absl::Status Failure(absl::StatusCode code, const std::string& line, int exit_code) {
  return RemoteFailureStatus(code, line, exit_code);
}

// Percent-encodes every byte but the unreserved ones and '/': a path's exact
// bytes, UTF-8 or not, reach the gateway as they are (docs/rest.md).
std::string Encode(std::string_view bytes) { return internal::PercentEncode(bytes, "/"); }

class Query {
 public:
  Query& Add(std::string_view name, std::string_view value) {
    absl::StrAppend(&text_, text_.empty() ? "?" : "&", internal::AbslView(name), "=",
                    Encode(value));
    return *this;
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

const std::string& PathOf(const std::string& path, const std::string& raw_path) {
  return raw_path.empty() ? path : raw_path;
}

std::string_view FieldString(const google::protobuf::Struct& object, const std::string& name) {
  const auto it = object.fields().find(name);
  return it != object.fields().end() && it->second.has_string_value()
             ? std::string_view(it->second.string_value())
             : std::string_view();
}

absl::StatusOr<google::protobuf::Struct> ParseObject(const std::string& json) {
  google::protobuf::Struct object;
  if (!google::protobuf::util::JsonStringToMessage(json, &object).ok()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  return object;
}

// The largest answer read from a gateway: a search's 100,000 matches as JSON
// (the services' answers are at most 16 MiB as protobuf, and JSON about
// triples that) fit well below it.
constexpr size_t kMaxAnswerBytes = size_t{128} << 20;

// What to do about a failure httplib names only by its kind.
std::string Hint(httplib::Error error) {
  switch (error) {
    case httplib::Error::SSLServerVerification:
      return " (the gateway's certificate is not trusted, or does not name this host: give its CA "
             "with --ca or FILEMESH_CA)";
    case httplib::Error::SSLConnection:
      return " (the TLS handshake failed: is the gateway serving https://, and does it want a "
             "client certificate?)";
    default:
      return "";
  }
}

// The reason a TCP connect failed with `err`.
std::string ConnectError(int err, const std::string& where, absl::Duration waited) {
  switch (err) {
    case ECONNREFUSED:
      return absl::StrCat("connection refused (nothing listens on ", where, ")");
    case ETIMEDOUT:
      return absl::StrCat("no answer from ", where, " within ", absl::FormatDuration(waited),
                          " (the host is down, or a firewall drops the packets)");
    case EHOSTUNREACH:
      return absl::StrCat("no route to host ", where);
    case ENETUNREACH:
      return absl::StrCat("network unreachable for ", where);
    default:
      return absl::StrCat(std::strerror(err), " (", where, ")");
  }
}

// httplib 0.11 names a failed connect only "Connection", without errno: one
// more connect to `host`:`port`, made here within `timeout`, says why
// (refused, timed out, no route, a name that does not resolve).
std::string WhyNoConnection(const std::string& host, const std::string& port,
                            absl::Duration timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::StrCat("cannot resolve \"", host, "\": ", ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  const std::string where = host.find(':') == std::string::npos
                                ? absl::StrCat(host, ":", port)
                                : absl::StrCat("[", host, "]:", port);
  std::string why = "no address to connect to";
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int err = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      const int ms =
          static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(timeout), 1, 60000));
      if (::poll(&p, 1, ms) <= 0) {
        err = ETIMEDOUT;
      } else {
        socklen_t len = sizeof(err);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
    ::close(fd);
    if (err == 0) {
      return absl::StrCat("the connection failed, but a second one to ", where,
                          " succeeded: the gateway may be starting or overloaded; try again");
    }
    why = ConnectError(err, where, timeout);
  }
  return why;
}

}  // namespace

struct GatewayClient::Impl {
  Options options;
  std::unique_ptr<httplib::Client> http;
  // Where the URL points (for a reason when the connection fails).
  std::string host;
  std::string port;
  absl::Duration connect_timeout = kMaxExchange;
  absl::Time deadline = absl::InfiniteFuture();

  bool Interrupted() const { return options.interrupted != nullptr && options.interrupted->load(); }

  // One GET; the body of a 200 or 202, or the failure.
  struct Reply {
    int status = 0;
    std::string body;
    std::string location;
  };
  absl::StatusOr<Reply> Get(const std::string& target) {
    httplib::Headers headers = {{"Accept", "application/json"},
                                {"User-Agent", absl::StrCat("filemesh/", FILEMESH_VERSION_STRING)}};
    if (!options.api_key.empty()) {
      headers.emplace("Authorization", absl::StrCat("Bearer ", options.api_key));
    }
    // The answer is read into memory: bounded, whatever the server sends.
    std::string body;
    bool too_large = false;
    httplib::Result result =
        http->Get(target, headers, [&body, &too_large](const char* data, size_t length) {
          if (body.size() + length > kMaxAnswerBytes) {
            too_large = true;
            return false;
          }
          body.append(data, length);
          return true;
        });
    if (too_large) {
      return Failure(
          absl::StatusCode::kResourceExhausted,
          absl::StrCat("filemesh: the gateway's answer is larger than ", kMaxAnswerBytes >> 20,
                       " MiB, more than any filemesh answer: not a filemesh gateway?"),
          kExitUnreachable);
    }
    if (!result) {
      std::string why;
      switch (result.error()) {
        case httplib::Error::Connection:
          why = WhyNoConnection(host, port, connect_timeout);
          break;
        case httplib::Error::ConnectionTimeout:
          why = absl::StrCat("no connection within ", absl::FormatDuration(connect_timeout));
          break;
        case httplib::Error::Read:
          why =
              "the connection closed before an answer came (is it a filemesh gateway, and "
              "does it speak the scheme of the URL?)";
          break;
        default:
          why = absl::StrCat(httplib::to_string(result.error()), Hint(result.error()));
      }
      return Failure(absl::StatusCode::kUnavailable,
                     absl::StrCat("filemesh: cannot reach the gateway at ", options.url, ": ", why),
                     kExitUnreachable);
    }
    Reply reply;
    reply.status = result->status;
    reply.body = std::move(body);
    reply.location = result->get_header_value("Location");
    const std::string type = result->get_header_value("Content-Type");
    if (reply.status == 200 || reply.status == 202) {
      if (!absl::StartsWith(type, "application/json")) {
        return Failure(absl::StatusCode::kUnavailable,
                       absl::StrCat("filemesh: ", options.url, " is not a filemesh gateway (",
                                    reply.status, " with Content-Type \"", type, "\")"),
                       kExitUnreachable);
      }
      return reply;
    }
    // A problem document (RFC 9457): its title and detail.
    absl::StatusOr<google::protobuf::Struct> problem =
        absl::StartsWith(type, "application/problem+json")
            ? ParseObject(reply.body)
            : absl::InvalidArgumentError("not a problem document");
    if (!problem.ok()) {
      return Failure(absl::StatusCode::kUnavailable,
                     absl::StrCat("filemesh: ", options.url, " answered HTTP ", reply.status,
                                  " without a problem document: not a filemesh gateway?"),
                     kExitUnreachable);
    }
    const int exit_code = reply.status == 401 ? kExitUnauthorized : 1;
    return Failure(
        reply.status == 401 ? absl::StatusCode::kUnauthenticated : absl::StatusCode::kUnknown,
        absl::StrCat("filemesh: ", internal::AbslView(FieldString(*problem, "title")), ": ",
                     internal::AbslView(FieldString(*problem, "detail"))),
        exit_code);
  }

  // The JSON of the answer to `target`: a 200's body, or, for a 202, the
  // `response` of its operation once done.
  absl::StatusOr<std::string> Call(const std::string& target) {
    absl::StatusOr<Reply> reply = Get(target);
    if (!reply.ok() || reply->status == 200) {
      if (!reply.ok()) return reply.status();
      return std::move(reply->body);
    }
    const std::string& operation = reply->location;
    if (!absl::StartsWith(operation, internal::AbslView(kOperationsPrefix)) ||
        operation.size() != kOperationsPrefix.size() + 32) {
      return Failure(absl::StatusCode::kUnavailable,
                     absl::StrCat("filemesh: the gateway queued the call but named no operation "
                                  "(Location \"",
                                  operation, "\")"),
                     kExitUnreachable);
    }
    const absl::Time start = absl::Now();
    absl::StatusOr<std::string> answer = Poll(operation, start);
    if (options.on_wait) options.on_wait(absl::Seconds(-1));
    return answer;
  }

  absl::StatusOr<std::string> Poll(const std::string& operation, absl::Time start) {
    for (;;) {
      // Wait a second between looks, a tenth at a time so Ctrl-C is prompt.
      const absl::Time next = absl::Now() + kPollEvery;
      while (absl::Now() < next) {
        if (Interrupted()) return absl::CancelledError("interrupted");
        if (absl::Now() >= deadline) {
          return Failure(absl::StatusCode::kDeadlineExceeded,
                         absl::StrCat("filemesh: Gateway Timeout: the call is still queued at ",
                                      operation, " (--timeout reached)"),
                         1);
        }
        if (options.on_wait) options.on_wait(absl::Now() - start);
        absl::SleepFor(std::min(absl::Milliseconds(100), next - absl::Now()));
      }
      absl::StatusOr<Reply> reply = Get(operation);
      if (!reply.ok()) return reply.status();
      absl::StatusOr<google::protobuf::Struct> state = ParseObject(reply->body);
      if (!state.ok()) {
        return Failure(absl::StatusCode::kUnavailable,
                       absl::StrCat("filemesh: the operation ", operation, " answered no JSON"),
                       kExitUnreachable);
      }
      const auto done = state->fields().find("done");
      if (done == state->fields().end() || !done->second.bool_value()) continue;
      // A failed call: AIP-151's `error` (google.rpc.Status).
      if (const auto error = state->fields().find("error");
          error != state->fields().end() && error->second.has_struct_value()) {
        const google::protobuf::Struct& status = error->second.struct_value();
        return Failure(absl::StatusCode::kUnknown,
                       absl::StrCat("filemesh: the queued call failed: ",
                                    internal::AbslView(FieldString(status, "status")), ": ",
                                    internal::AbslView(FieldString(status, "message"))),
                       1);
      }
      const auto response = state->fields().find("response");
      if (response == state->fields().end() || !response->second.has_struct_value()) {
        return Failure(absl::StatusCode::kUnavailable,
                       absl::StrCat("filemesh: the operation ", operation, " has no response"),
                       kExitUnreachable);
      }
      std::string json;
      if (!google::protobuf::util::MessageToJsonString(response->second.struct_value(), &json)
               .ok()) {
        return absl::InternalError("cannot print the operation's response");
      }
      return json;
    }
  }

  template <typename Message>
  absl::StatusOr<Message> Parse(absl::StatusOr<std::string> json) {
    if (!json.ok()) return json.status();
    Message message;
    google::protobuf::util::JsonParseOptions parse;
    parse.ignore_unknown_fields = true;  // "served_by"
    if (!google::protobuf::util::JsonStringToMessage(*json, &message, parse).ok()) {
      return Failure(
          absl::StatusCode::kUnavailable,
          absl::StrCat("filemesh: the gateway's answer is not a ", Message::descriptor()->name()),
          kExitUnreachable);
    }
    return message;
  }
};

GatewayClient::GatewayClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GatewayClient::~GatewayClient() = default;

absl::StatusOr<std::unique_ptr<GatewayClient>> GatewayClient::Create(Options options) {
  std::string url = options.url;
  while (absl::EndsWith(url, "/")) url.pop_back();
  const bool http = absl::StartsWith(url, "http://");
  const bool https = absl::StartsWith(url, "https://");
  const std::string_view scheme = http ? "http://" : https ? "https://" : "";
  const std::string_view rest = std::string_view(url).substr(scheme.size());
  if ((!http && !https) || rest.empty() || rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--gateway takes http://HOST[:PORT] or https://HOST[:PORT], not \"", options.url, "\""));
  }
  if (!options.ca_file.empty()) {
    if (!https) {
      return absl::InvalidArgumentError(
          absl::StrCat("--ca (or FILEMESH_CA) is for https:// gateways, not \"", url, "\""));
    }
    if (std::FILE* ca = std::fopen(options.ca_file.c_str(), "r")) {
      std::fclose(ca);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--ca \"", options.ca_file, "\" cannot be read: ", std::strerror(errno)));
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->http = std::make_unique<httplib::Client>(url);
  if (https) {
    // Always verified: against --ca, else the system's trusted CAs.
    impl->http->enable_server_certificate_verification(true);
    if (!options.ca_file.empty()) impl->http->set_ca_cert_path(options.ca_file);
  }
  if (!impl->http->is_valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--gateway \"", options.url, "\" is not usable"));
  }
  const absl::Duration exchange = std::min(options.timeout, kMaxExchange);
  const auto micros = absl::ToInt64Microseconds(exchange);
  impl->http->set_connection_timeout(micros / 1000000, micros % 1000000);
  impl->connect_timeout = exchange;
  // HOST, HOST:PORT, [V6] or [V6]:PORT.
  const size_t port_colon = rest.rfind(':');
  const bool has_port = port_colon != std::string_view::npos && rest.back() != ']' &&
                        (rest.front() != '[' || rest[port_colon - 1] == ']');
  std::string_view host = has_port ? rest.substr(0, port_colon) : rest;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  impl->host = std::string(host);
  impl->port = has_port ? std::string(rest.substr(port_colon + 1)) : https ? "443" : "80";
  impl->http->set_read_timeout(micros / 1000000, micros % 1000000);
  impl->http->set_write_timeout(micros / 1000000, micros % 1000000);
  impl->http->set_follow_location(false);
  if (options.timeout != absl::InfiniteDuration()) impl->deadline = absl::Now() + options.timeout;
  options.url = url;
  impl->options = std::move(options);
  return std::unique_ptr<GatewayClient>(new GatewayClient(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<RemoteGateway>> GatewayClient::Connect(Options options) {
  absl::StatusOr<std::unique_ptr<GatewayClient>> client = Create(std::move(options));
  if (!client.ok()) return client.status();
  return std::unique_ptr<RemoteGateway>(*std::move(client));
}

absl::StatusOr<v1::ListResponse> GatewayClient::List(const v1::ListRequest& request) {
  Query query;
  query.Add("path", PathOf(request.path(), request.raw_path()));
  if (request.page_size() != 0) query.Add("page_size", absl::StrCat(request.page_size()));
  if (!request.page_token().empty()) query.Add("page_token", request.page_token());
  switch (request.sort()) {
    case v1::SORT_FIELD_SIZE:
      query.Add("sort", "size");
      break;
    case v1::SORT_FIELD_MODIFIED:
      query.Add("sort", "modified");
      break;
    default:
      break;
  }
  if (request.descending()) query.Add("order", "desc");
  if (request.include_hidden()) query.Add("hidden", "true");
  return impl_->Parse<v1::ListResponse>(impl_->Call("/api/v1/files" + query.text()));
}

absl::StatusOr<v1::SearchResponse> GatewayClient::Search(const v1::SearchRequest& request) {
  Query query;
  query.Add("q", request.pattern());
  switch (request.syntax()) {
    case v1::PATTERN_SYNTAX_SUBSTRING:
      query.Add("syntax", "substring");
      break;
    case v1::PATTERN_SYNTAX_REGEX:
      query.Add("syntax", "regex");
      break;
    default:
      break;
  }
  query.Add("path", PathOf(request.path(), request.raw_path()));
  if (request.case_insensitive()) query.Add("case_insensitive", "true");
  switch (request.type()) {
    case v1::FILE_TYPE_FILE:
      query.Add("type", "file");
      break;
    case v1::FILE_TYPE_DIRECTORY:
      query.Add("type", "directory");
      break;
    case v1::FILE_TYPE_SYMLINK:
      query.Add("type", "symlink");
      break;
    case v1::FILE_TYPE_OTHER:
      query.Add("type", "other");
      break;
    default:
      break;
  }
  if (request.has_max_depth()) query.Add("max_depth", absl::StrCat(request.max_depth()));
  if (request.max_results() != 0) query.Add("max_results", absl::StrCat(request.max_results()));
  if (request.include_hidden()) query.Add("hidden", "true");
  if (request.has_min_size()) query.Add("min_size", absl::StrCat(request.min_size()));
  if (request.has_max_size()) query.Add("max_size", absl::StrCat(request.max_size()));
  if (request.has_one_file_system()) {
    query.Add("one_file_system", request.one_file_system() ? "true" : "false");
  }
  return impl_->Parse<v1::SearchResponse>(impl_->Call("/api/v1/search" + query.text()));
}

}  // namespace filemesh::cli
