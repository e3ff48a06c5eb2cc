#include "filemesh/rest/http.hpp"

#include <atomic>
#include <boost/beast/http/status.hpp>
#include <string>
#include <utility>

#include "base/absl_compat.h"
#include "rest/json.h"
#include "rest/problem.h"

namespace filemesh {

const std::string* HttpRequest::Header(std::string_view lower_case_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_case_name) return &value;
  }
  return nullptr;
}

int HttpStatusFromStatusCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

struct HttpResponder::State {
  explicit State(std::function<void(HttpResponse)> s) : send(std::move(s)) {}
  ~State() {
    if (!used.exchange(true) && send) {
      send(internal::ProblemWithHttpStatus(
          500, absl::InternalError("the request handler gave no response"), ""));
    }
  }
  std::function<void(HttpResponse)> send;
  std::atomic<bool> used{false};
};

HttpResponder::HttpResponder(std::function<void(HttpResponse)> send)
    : state_(std::make_shared<State>(std::move(send))) {}

void HttpResponder::operator()(HttpResponse response) const {
  if (state_->used.exchange(true)) return;
  state_->send(std::move(response));
}

std::string_view HttpReasonPhrase(int http_status) {
  // RFC 9110 renamed 413 and 422 after Beast 1.74's table was written; 499
  // is nginx's, which Beast does not know.
  switch (http_status) {
    case 413:
      return "Content Too Large";
    case 422:
      return "Unprocessable Content";
    case 499:
      return "Client Closed Request";
    default:
      break;
  }
  if (http_status < 100 || http_status > 599) return "Unknown";
  const std::string_view phrase =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(http_status));
  return phrase == "<unknown-status>" ? "Unknown" : phrase;
}

HttpResponse ProblemResponse(const absl::Status& status, std::string_view instance) {
  // An OK status is not a problem; answer it as an internal error rather than
  // a 200 with a problem body.
  if (status.ok()) {
    return ProblemResponse(absl::InternalError("ProblemResponse called with an OK status"),
                           instance);
  }
  return internal::ProblemWithHttpStatus(HttpStatusFromStatusCode(status.code()), status, instance);
}

namespace internal {

HttpResponse ProblemWithHttpStatus(int http_status, const absl::Status& status,
                                   std::string_view instance) {
  HttpResponse response;
  response.status = http_status;
  response.content_type = "application/problem+json";
  JsonObjectWriter json;
  json.String("type", "about:blank")
      .String("title", HttpReasonPhrase(http_status))
      .Int("status", http_status)
      .String("detail", StdView(status.message()))
      .String("code", absl::StatusCodeToString(status.code()));
  if (!instance.empty()) json.String("instance", instance);
  response.body = json.Finish();
  // A service at its limits (calls in flight, threads, descriptors): worth
  // trying again shortly.
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    response.headers.emplace_back("Retry-After", "1");
  }
  return response;
}

}  // namespace internal

}  // namespace filemesh
