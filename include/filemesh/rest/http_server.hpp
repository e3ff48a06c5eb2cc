// HttpServer: serves an HttpHandler or an AsyncHttpHandler (http.hpp) over
// HTTP/1.1, event-driven: a few I/O threads carry every connection, none is
// held by a connection, and an asynchronous handler's response is written
// whenever it comes (from a backend call's completion, say).
//
//   filemesh::HttpServerOptions options;
//   options.listen = "127.0.0.1:8080";
//   filemesh::HttpServer server(options);
//   absl::Status status = server.Start(
//       [&](filemesh::HttpRequest r, filemesh::HttpResponder respond) {
//         gateway.HandleAsync(r, std::move(respond));
//       });
//   if (!status.ok()) { ... }
//   ... wait for a signal ...
//   server.Shutdown();
//
// Every request reaches the handler whatever its method and path, with the
// path and query percent-decoded (a malformed escape is answered 400 without
// calling it) and header names in lower case. Request bodies are read (up to
// max_body_bytes, else 413) and dropped: handlers get none. HEAD is answered
// with the handler's headers and no body.
//
// Limits, each answered with an `application/problem+json` and the
// connection closed: a request head over max_head_bytes or with more than
// max_header_fields fields is 431, a request target over max_target_bytes is
// 414, a head not complete within head_timeout of its first byte is 408
// (slow-loris), a body not complete within body_timeout is 408, a body over
// max_body_bytes is 413, `Content-Length` together with `Transfer-Encoding`
// (or a malformed or repeated `Content-Length`) is 400. Past max_connections
// open connections (or max_connections_per_client from one address) a new
// one gets 503 and is closed at once. A new connection that sends nothing
// within head_timeout is closed. A large response that would take the
// responses waiting for slow clients past max_buffered_response_bytes is
// answered 503 instead. A keep-alive connection idle for idle_timeout is
// closed, and so is one whose peer does not take its response within
// write_timeout. A handler that throws is answered 500. Logs
// `event=http_listening address=HOST:PORT` once bound.
//
// With options.tls the server speaks HTTPS only: a plain-HTTP request on its
// port is answered 400 in plain HTTP (saying to use https://), and failed
// handshakes are logged as `event=tls_handshake_failed` (the first and every
// 100th, with the peer and OpenSSL's reason). Every limit above holds over
// TLS; the handshake counts against head_timeout.
//
// Thread safety: Start, Shutdown and Wait may be called from any thread;
// handlers run on the I/O threads, many at once.

#ifndef FILEMESH_REST_HTTP_SERVER_HPP_
#define FILEMESH_REST_HTTP_SERVER_HPP_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "filemesh/rest/http.hpp"
#include "filemesh/service/tls.hpp"

namespace filemesh {

struct HttpServerOptions {
  // "host:port" to listen on: "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80".
  // Port 0 picks a free one (see HttpServer::port()).
  std::string listen = "127.0.0.1:8080";
  // Threads running the event loop; 0: one per CPU the process may use
  // (affinity mask and cgroup CPU quota).
  int io_threads = 0;
  // Open connections at most; past it a new connection is answered 503 and
  // closed. Each needs a file descriptor: see RaiseOpenFileLimit (process.hpp).
  size_t max_connections = 10000;
  // Open connections from one client address at most; past it a new one
  // from that address is answered 503 and closed, so that one client cannot
  // take every connection.
  size_t max_connections_per_client = 256;
  // Bytes of responses waiting to be taken by their clients, across every
  // connection. A response over 64 KiB that would pass it is replaced by a
  // 503 (Retry-After: 1): slow readers cannot make the server's memory grow.
  size_t max_buffered_response_bytes = size_t{512} << 20;
  // The request line and header fields together, in bytes (431 past it).
  size_t max_head_bytes = size_t{16} * 1024;
  // The request target (path and query), in bytes (414 past it).
  size_t max_target_bytes = size_t{8} * 1024;
  // Header fields per request (431 past it).
  size_t max_header_fields = 100;
  // Request bodies are read and dropped up to this many bytes (413 past it).
  size_t max_body_bytes = size_t{1024} * 1024;
  // From a request's first byte to the end of its head (408 past it); also
  // how long a new connection may wait before its first byte (it is closed
  // past it) and, under TLS, the handshake.
  absl::Duration head_timeout = absl::Seconds(10);
  // From the end of the head to the end of the body (408 past it).
  absl::Duration body_timeout = absl::Seconds(30);
  // A keep-alive connection with no request coming is closed after this.
  absl::Duration idle_timeout = absl::Seconds(60);
  // A response the peer does not take within this is dropped with the
  // connection.
  absl::Duration write_timeout = absl::Seconds(30);
  // Requests one connection may carry before the server closes it.
  int keep_alive_max_requests = 10000;
  // How long Shutdown waits for the responses of requests in flight before
  // it closes their connections too.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // HTTPS when enabled(): TLS 1.2 or 1.3 with cert_file and key_file (PEM),
  // re-read when they change (each new connection gets the files' current
  // certificate; a pair that does not match yet, mid-rotation, is retried).
  // With ca_file, clients are asked for a certificate signed by it (and
  // refused without one when require_peer_certificate). The handshake must
  // end within head_timeout. allowed_peers is refused (InvalidArgument):
  // the CA decides who may connect; server_name is not used.
  TlsOptions tls;
  // Over TLS, every response carries `Strict-Transport-Security: max-age=`
  // this (in seconds): browsers then use only HTTPS for the host. Zero: not
  // sent.
  absl::Duration hsts_max_age = absl::Hours(24 * 365);
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
  absl::Status Start(AsyncHttpHandler handler);
  // The same for a handler that answers at once. It runs on an I/O thread,
  // so it must not block: a handler that waits on a backend belongs in the
  // asynchronous form.
  absl::Status Start(HttpHandler handler);

  // The bound port (after Start), 0 before.
  int port() const;
  // "host:port" with the bound port, as logged ("127.0.0.1:43121").
  std::string address() const;
  // Connections open now.
  size_t connections() const;
  // Bytes of responses being written to their clients now (the part of
  // max_buffered_response_bytes in use).
  size_t buffered_response_bytes() const;

  // Stops accepting, closes idle connections and those still sending a
  // request at once, lets the requests being handled be answered (for up to
  // shutdown_grace, then closes their connections too), and returns once the
  // I/O threads are done. Idempotent.
  void Shutdown();

  // Blocks until the server has stopped (after Shutdown()).
  void Wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh

#endif  // FILEMESH_REST_HTTP_SERVER_HPP_
