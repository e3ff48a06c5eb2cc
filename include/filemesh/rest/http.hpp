// HTTP messages as plain values, and the one mapping from absl::Status to an
// HTTP status and an RFC 9457 problem document.
//
// These types keep the REST layer independent of any HTTP library: the
// gateway logic (RestGateway) takes an HttpRequest and returns an
// HttpResponse, and HttpServer (http_server.hpp) carries them over the wire.
// Unit tests drive handlers with these values directly.

#ifndef FILEMESH_REST_HTTP_HPP_
#define FILEMESH_REST_HTTP_HPP_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace filemesh {

struct HttpRequest {
  // "GET", "POST", ...
  std::string method;
  // The request target's path, percent-decoded, without the query.
  std::string path;
  // Query parameters, percent-decoded, in the order they came (a name may
  // repeat; handlers decide whether that is an error).
  std::vector<std::pair<std::string, std::string>> query;
  // Header fields; names in lower case.
  std::vector<std::pair<std::string, std::string>> headers;
  // Peer address, "ip:port" (for logs).
  std::string remote_address;

  // The first header named `lower_case_name`, or null.
  const std::string* Header(std::string_view lower_case_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  // Extra header fields (Location, WWW-Authenticate, X-Request-Id, ...).
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Hands the response to one request back to the HTTP server, from any
// thread and at any later time. Copies share one response: the first call
// sends it and later calls are ignored. When every copy is gone without a
// call, the client gets a 500 problem, so a lost responder never leaves a
// connection hanging.
class HttpResponder {
 public:
  explicit HttpResponder(std::function<void(HttpResponse)> send);

  void operator()(HttpResponse response) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// A handler that answers later: it returns at once (it runs on the server's
// I/O threads and must not block) and calls `respond` when the answer is
// ready, e.g. from the completion of a backend call.
using AsyncHttpHandler = std::function<void(HttpRequest request, HttpResponder respond)>;

// The HTTP status that stands for `code`:
//   OK 200, InvalidArgument 400, OutOfRange 400, FailedPrecondition 400,
//   Unauthenticated 401, PermissionDenied 403, NotFound 404, AlreadyExists 409,
//   Aborted 409, Cancelled 499, Unimplemented 501, ResourceExhausted 503
//   (ProblemResponse adds Retry-After: 1), Unavailable 503,
//   DeadlineExceeded 504, anything else 500.
int HttpStatusFromStatusCode(absl::StatusCode code);

// The reason phrase of an HTTP status ("Not Found"); "Unknown" for others.
std::string_view HttpReasonPhrase(int http_status);

// An `application/problem+json` response for a non-OK `status`: type
// "about:blank", title = the reason phrase, status, detail = the status
// message, plus "code" (the canonical status name, e.g. "NOT_FOUND") and,
// when given, "instance". The body is valid JSON whatever the message holds
// (quotes, control characters; bytes that are not UTF-8 appear as the text
// `\xHH`). An OK `status` is a caller's bug and gives a 500 problem.
HttpResponse ProblemResponse(const absl::Status& status, std::string_view instance = "");

}  // namespace filemesh

#endif  // FILEMESH_REST_HTTP_HPP_
