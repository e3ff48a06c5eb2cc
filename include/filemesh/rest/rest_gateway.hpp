// RestGateway: the filemesh REST API (docs/rest.md) in front of an
// asynchronous lister and searcher (filemesh/rpc/async_file_service.hpp:
// FileListerClient and FileSearcherClient, or any other implementation), as
// a function from HttpRequest to HttpResponse (HandleAsync: the response
// comes through an HttpResponder). An HTTP server (HttpServer in http_server.hpp, or any
// other) carries the messages; this class holds everything else:
//
//   GET /api/v1/files            a directory listing (v1::ListResponse as JSON)
//   GET /api/v1/search           a search (v1::SearchResponse as JSON)
//   GET /api/v1/operations/{id}  the answer of a call the broker queued (202)
//   GET /healthz, /readyz        liveness; readiness per backend
//   GET /metrics                 Prometheus text: requests, latency, channels
//
// Query parameters are checked strictly (unknown, repeated or malformed ones
// are 400), errors are `application/problem+json` with the status mapping of
// http.hpp, `/api/` routes can require a bearer key, every response carries
// an `X-Request-Id`, and each request can be logged as one `http_request`
// event (log.hpp).
//
//   auto gateway = std::make_shared<filemesh::RestGateway>(options, lister, searcher);
//   server.Start([&](filemesh::HttpRequest r, filemesh::HttpResponder respond) {
//     gateway->HandleAsync(r, std::move(respond));
//   });
//
// Thread safety: Handle and HandleAsync may be called from any number of
// threads at once. The destructor waits for the backend calls still in
// flight (each ends within request_timeout).

#ifndef FILEMESH_REST_REST_GATEWAY_HPP_
#define FILEMESH_REST_REST_GATEWAY_HPP_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "filemesh/rest/http.hpp"
#include "filemesh/rpc/async_file_service.hpp"
#include "prometheus/registry.h"

namespace filemesh {

struct RestGatewayOptions {
  // When non-empty, every `/api/` route needs `Authorization: Bearer
  // <api_key>`; /healthz, /readyz, /metrics and the page (/ and /ui/...)
  // stay open. Logged and audited under the name "api_key". Keys are
  // compared by their SHA-256 digests, never as text.
  std::string api_key;
  // A file of named keys, each stored as its SHA-256 and optionally limited
  // to a scope, a directory under the services' root (docs/security.md has
  // the format):
  //   ci-bot  <64 hex digits: printf %s "$KEY" | sha256sum>  projects/a
  // A request with a scoped key reads only beneath its scope: a `path` (of
  // files and search) outside it is 403, an absent one is the scope, the
  // services resolve it beneath the scope (no symbolic link leads out), and
  // operations made for paths outside it are 403. The file is read again
  // within a second of a change; a version that does not parse keeps the
  // keys before (event=api_keys_reload_failed). Works with api_key or alone.
  std::string api_keys_file;
  // The audit trail: one `event=api_request` line per request to an /api/
  // route (request_id, key name, client address, method, route, path,
  // pattern, status, served_by, bytes, duration_ms), appended to this file,
  // or to stderr for "-". Empty: none.
  std::string audit_log;
  // The hosts the gateway answers for, as the Host header names them (its
  // port and letter case ignored; IPv6 without brackets). A request naming
  // another host gets 421 Misdirected Request: a web page whose domain was
  // rebound to this address (DNS rebinding) cannot read the API through the
  // user's browser. /healthz is answered for any host (probes), and a request
  // without Host is taken as meant for this gateway. Empty, or holding "*":
  // any host.
  std::vector<std::string> allowed_hosts;
  // Deadline of the backend call a request makes. When it passes with the
  // call queued on the broker, the answer is 202 and an operation.
  absl::Duration request_timeout = absl::Seconds(5);
  // Where the operations of 202s live (AIP-151: GET /api/v1/operations/{id}
  // answers `done` and then `response` or `error`):
  //   ""                 this process's memory (lost when it ends)
  //   a file path        an SQLite database, created if missing (its folder
  //                      must exist): operations outlive a restart, and
  //                      gateways on one host may share the file
  //   postgresql://...   a PostgreSQL database (libpq's URL, e.g. with
  //                      sslmode=verify-full): gateways on any host share it
  // A store that cannot be opened makes status() say why, and the /api/
  // routes answer 503. The gateway sets the late-reply listener of its
  // backends' channels (FailoverChannel::SetLateReplyListener) and, while it
  // lives, writes each late reply to the store, once.
  std::string operations_db;
  // Most operations remembered at once; past it the oldest is forgotten (0
  // is taken as 1).
  size_t operation_capacity = 10000;
  // How long an operation, and its answer once it came, is remembered after
  // the 202. An operation whose reply has not come within the channel's
  // late_reply_ttl ends with DEADLINE_EXCEEDED.
  absl::Duration operation_ttl = absl::Hours(1);
  // Bytes the finished operations' answers may hold together (0 is taken as
  // 1); past it the oldest operations are forgotten (404 afterwards), and
  // counted in filemesh_http_operations_evicted_total with those forgotten
  // past operation_capacity.
  size_t operation_max_bytes = size_t{256} << 20;
  // One LogEvent("http_request", ...) per request: request_id, method, route,
  // path, status, served_by, duration_ms (never a header's value).
  bool access_log = true;
  // The browser page: `/` and its assets under `/ui/`, compiled into the
  // library, using only the API above. Off: those paths answer 404.
  // `/api/v1/openapi.yaml` (the API's OpenAPI 3.1 description) is served
  // either way.
  bool serve_ui = true;
  // Where the gateway's request metrics go (filemesh_http_requests_total,
  // filemesh_http_request_duration_seconds), as libraries on prometheus-cpp
  // do: the application's own registry, which /metrics then serves whole.
  // Null: the gateway makes one of its own (see metrics()).
  std::shared_ptr<prometheus::Registry> metrics_registry;
};

class RestGateway {
 public:
  // Either backend may be null: its routes then answer 503. A backend with a
  // FailoverChannel (failover_channel()) has its transports reported by
  // /readyz and its channel counters exported by /metrics.
  RestGateway(RestGatewayOptions options, std::shared_ptr<const AsyncFileListerInterface> lister,
              std::shared_ptr<const AsyncFileSearcherInterface> searcher);
  ~RestGateway();
  RestGateway(const RestGateway&) = delete;
  RestGateway& operator=(const RestGateway&) = delete;

  // Answers `request` (any method, any path, any bytes) through `respond`,
  // without waiting: the files and search routes call their backend
  // asynchronously and respond from its completion (a transport's thread);
  // the other routes respond before HandleAsync returns. Never throws.
  void HandleAsync(const HttpRequest& request, HttpResponder respond);

  // The blocking form: the response to `request`. For tests and servers
  // that give each request a thread.
  HttpResponse Handle(const HttpRequest& request);

  // OK, or why the gateway cannot serve its API (an API keys file or an
  // audit log that cannot be read or opened): its /api/ routes then answer
  // 503. A server should check it before it starts.
  absl::Status status() const;

  // True when /readyz answers 200: at least one backend (lister, searcher)
  // is configured and has a transport that can deliver now. /readyz says
  // "ready" when both can, "degraded" (still 200) when one cannot, naming it
  // in `missing`, and "unavailable" (503) when neither can.
  bool Ready() const;

  // The registry /metrics renders (options.metrics_registry, or the
  // gateway's own); an application may add its families to it. /metrics also
  // serves, computed at each request, the backends' channel counters
  // (filemesh_channel_*) and filemesh_http_operations.
  prometheus::Registry& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh

#endif  // FILEMESH_REST_REST_GATEWAY_HPP_
