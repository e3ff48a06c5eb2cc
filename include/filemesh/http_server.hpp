// HttpServer: serves an HttpHandler (http.hpp) over HTTP/1.1 on its own
// threads, so the REST layer stays a plain function from HttpRequest to
// HttpResponse.
//
//   filemesh::HttpServerOptions options;
//   options.listen = "127.0.0.1:8080";
//   filemesh::HttpServer server(options);
//   absl::Status status =
//       server.Start([&](const filemesh::HttpRequest& r) { return gateway.Handle(r); });
//   if (!status.ok()) { ... }
//   ... wait for a signal ...
//   server.Shutdown();
//
// Every request reaches the handler whatever its method and path, with the
// path and query percent-decoded (a malformed escape is answered 400 without
// calling it) and header names in lower case. Request bodies are read (up to
// max_body_bytes, else 413) and dropped: handlers get none. A handler that
// throws is answered 500; requests the server cannot parse (bad request
// line, target too long, ...) get an `application/problem+json` answer, as
// does any error response left without a body. Logs `event=http_listening
// address=HOST:PORT` once bound.
//
// Thread safety: Start, Shutdown and Wait may be called from any thread; the
// handler runs on many threads at once.

#ifndef FILEMESH_HTTP_SERVER_HPP_
#define FILEMESH_HTTP_SERVER_HPP_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "filemesh/http.hpp"

namespace filemesh {

struct HttpServerOptions {
  // "host:port" to listen on: "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80".
  // Port 0 picks a free one (see HttpServer::port()).
  std::string listen = "127.0.0.1:8080";
  // Threads serving connections. An open connection holds its thread for as
  // long as it stays open (keep-alive included), so this is also how many
  // connections are served at once; more wait to be accepted.
  int threads = 64;
  // Longest wait for each read of a request and each write of a response.
  absl::Duration read_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(5);
  // An idle keep-alive connection is closed after this (in whole seconds, at
  // least one).
  absl::Duration keep_alive_timeout = absl::Seconds(5);
  // Requests one connection may carry before the server closes it.
  int keep_alive_max_requests = 10000;
  // Larger request bodies are refused with 413.
  size_t max_body_bytes = 65536;
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  // Shutdown(), then waits for it.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving `handler` in the background. Errors:
  // InvalidArgument (malformed or unresolvable listen address, bad option),
  // Unavailable (the address cannot be bound, e.g. the port is in use),
  // FailedPrecondition (called twice).
  absl::Status Start(HttpHandler handler);

  // The bound port (after Start), 0 before.
  int port() const;
  // "host:port" with the bound port, as logged ("127.0.0.1:43121").
  std::string address() const;

  // Stops accepting, lets the requests being handled finish and be answered,
  // closes idle keep-alive connections, and returns once every serving
  // thread is done. Idempotent.
  void Shutdown();

  // Blocks until the server has stopped (after Shutdown()).
  void Wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh

#endif  // FILEMESH_HTTP_SERVER_HPP_
