// gateway: the REST API (docs/rest.md) in front of mserv1 and mserv2. Calls
// go over gRPC, and over RabbitMQ when gRPC fails; runs until SIGTERM or
// SIGINT.
//
//   gateway --listen 127.0.0.1:8080 --lister_grpc 127.0.0.1:50051
//           --searcher_grpc 127.0.0.1:50052,127.0.0.1:50053
//           --amqp_url amqp://guest:guest@127.0.0.1:5672/
//
// Each flag can also be set from FILEMESH_<NAME> (FILEMESH_API_KEY, ...).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/queue_flags.h"
#include "filemesh/rest/http_server.hpp"
#include "filemesh/rest/rest_gateway.hpp"
#include "filemesh/rpc/clients.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/rpc/process.hpp"
#include "filemesh/service/address.hpp"
#include "filemesh/service/log.hpp"
#include "filemesh/service/process.hpp"

ABSL_FLAG(std::string, listen, "127.0.0.1:8080", "HTTP listen address HOST:PORT");
ABSL_FLAG(std::string, lister_grpc, "",
          "mserv1 gRPC targets, HOST:PORT[,HOST:PORT...] (spread round robin); empty: no gRPC");
ABSL_FLAG(std::string, searcher_grpc, "",
          "mserv2 gRPC targets, HOST:PORT[,HOST:PORT...] (spread round robin); empty: no gRPC");
ABSL_FLAG(std::string, api_key, "",
          "when set, /api/ routes need 'Authorization: Bearer KEY' (prefer FILEMESH_API_KEY)");
ABSL_FLAG(std::string, api_keys_file, "",
          "named API keys as NAME SHA256 [SCOPE] lines (docs/security.md): a scoped key reads "
          "only beneath its directory; read again when the file changes");
ABSL_FLAG(std::string, audit_log, "",
          "append one line per API request (key name, client, route, path, status, bytes, ...) "
          "to this file; \"-\": stderr; empty: no audit trail");
ABSL_FLAG(bool, ui, true,
          "serve the browser page at / (its files under /ui/); --noui: those paths answer 404");
ABSL_FLAG(absl::Duration, request_timeout, absl::Seconds(5),
          "deadline of a backend call; past it a call queued on the broker answers 202");
ABSL_FLAG(absl::Duration, attempt_timeout, absl::Milliseconds(250),
          "longest a gRPC server may take to acknowledge a call before it goes over RabbitMQ "
          "(an acknowledged call waits for its answer until --request_timeout)");
ABSL_FLAG(absl::Duration, breaker_cooldown, absl::Seconds(1),
          "how long an open circuit breaker keeps calls off gRPC before probing it");
ABSL_FLAG(std::string, operations_db, "",
          "where the operations of 202s live: an SQLite file (created if missing; gateways on "
          "one host may share it), a PostgreSQL URL (postgresql://user@host/db?sslmode="
          "verify-full&sslrootcert=...: gateways on any host share it), or \":memory:\"; "
          "empty: $STATE_DIRECTORY/operations.db when systemd gives a state directory, else "
          "memory");
ABSL_FLAG(absl::Duration, orphan_reply_after, absl::Seconds(10),
          "with an operations database: a reply left unread this long in a gateway's reply "
          "queue (the gateway was killed or restarted) moves to the queue every gateway reads, "
          "and whichever takes it writes it to the database; at least 100ms");
ABSL_FLAG(absl::Duration, operation_ttl, absl::Hours(1),
          "how long a 202's operation, and its answer once it came, is remembered");
ABSL_FLAG(int64_t, operation_capacity, 10000,
          "operations remembered at once; past it the oldest is forgotten");
ABSL_FLAG(int64_t, operation_max_bytes, int64_t{256} << 20,
          "bytes the finished operations' answers may hold together; past it the oldest are "
          "forgotten");
ABSL_FLAG(absl::Duration, late_reply_ttl, absl::Minutes(10),
          "how long a request queued on the broker stays worth serving (an operation whose "
          "reply has not come by then ends DEADLINE_EXCEEDED), and a late reply the operations "
          "database could not take is kept");
ABSL_FLAG(int64_t, late_reply_capacity, 10000,
          "late replies kept at once per backend; past it the oldest is dropped");
ABSL_FLAG(int64_t, late_reply_max_bytes, int64_t{256} << 20,
          "bytes the late replies kept per backend may hold together; past it the oldest are "
          "dropped");
ABSL_FLAG(int64_t, outbox_max_calls, 10000,
          "per backend, AMQP calls the broker has not confirmed yet, at most; past it a call "
          "fails at once (503)");
ABSL_FLAG(int64_t, outbox_max_bytes, int64_t{64} << 20,
          "per backend, bytes of AMQP requests the broker has not confirmed yet, at most; past "
          "it a call fails at once (503)");
ABSL_FLAG(int, amqp_callback_threads, 2,
          "per backend, threads that read AMQP replies and turn them into HTTP answers (JSON), "
          "off the connection's I/O thread; 1 to 64");
ABSL_FLAG(int, http_io_threads, 0,
          "threads running the HTTP event loop; 0: one per CPU the process may use");
ABSL_FLAG(int64_t, max_connections, 10000,
          "open HTTP connections at most; past it a new one is answered 503 and closed");
ABSL_FLAG(int64_t, max_connections_per_client, 256,
          "open HTTP connections from one client address at most; past it a new one from that "
          "address is answered 503 and closed");
ABSL_FLAG(int64_t, max_buffered_response_bytes, int64_t{512} << 20,
          "bytes of responses waiting for slow clients, across connections; a response over 64 "
          "KiB that would pass it is answered 503");
ABSL_FLAG(int64_t, max_head_bytes, 16 * 1024, "request line + header fields, bytes (431 past it)");
ABSL_FLAG(int64_t, max_target_bytes, 8 * 1024, "request target, bytes (414 past it)");
ABSL_FLAG(int64_t, max_header_fields, 100, "header fields per request (431 past it)");
ABSL_FLAG(int64_t, max_body_bytes, 1024 * 1024,
          "request bodies are read and dropped up to this (413 past it)");
ABSL_FLAG(absl::Duration, head_timeout, absl::Seconds(10),
          "from a request's first byte to the end of its head (408 past it)");
ABSL_FLAG(absl::Duration, body_timeout, absl::Seconds(30),
          "from the end of a request's head to the end of its body (408 past it)");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "an idle keep-alive connection is closed after this");
ABSL_FLAG(absl::Duration, write_timeout, absl::Seconds(30),
          "a client that does not take its response within this is dropped");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "on SIGTERM, how long requests in flight may take to be answered");
ABSL_FLAG(std::vector<std::string>, allowed_hosts, {},
          "Host header values the gateway answers (port ignored), comma-separated; others get "
          "421 (DNS rebinding); \"*\": any. Empty: the --listen host, localhost, 127.0.0.1 "
          "and ::1");
ABSL_FLAG(bool, allow_anonymous, false,
          "serve the API without --api_key on an address other than loopback (anyone who "
          "reaches it may list and search)");
ABSL_FLAG(std::vector<std::string>, amqp_service_users, {},
          "broker users whose AMQP replies are believed (the services'), comma-separated; "
          "empty: the gateway's own broker user");
ABSL_FLAG(std::string, tls_cert, "",
          "serve HTTPS (only) with this certificate chain, PEM, leaf first; re-read when it "
          "changes");
ABSL_FLAG(std::string, tls_key, "", "the private key of --tls_cert (PEM)");
ABSL_FLAG(absl::Duration, hsts_max_age, absl::Hours(24 * 365),
          "over HTTPS, the Strict-Transport-Security max-age browsers are told; 0: not sent");
ABSL_FLAG(std::string, backend_ca, "",
          "gRPC to mserv1/mserv2 over TLS: the CA file (PEM) their certificates must lead to");
ABSL_FLAG(std::string, backend_tls_cert, "",
          "the gateway's client certificate (PEM) toward mserv1/mserv2, for mutual TLS");
ABSL_FLAG(std::string, backend_tls_key, "", "the private key of --backend_tls_cert (PEM)");
ABSL_FLAG(std::string, backend_server_name, "",
          "the name the services' certificates must carry when it is not the host of "
          "--lister_grpc/--searcher_grpc (e.g. those are IP addresses)");

namespace {

[[noreturn]] void Exit(const absl::Status& status) {
  std::fprintf(stderr, "gateway: %s\n", status.ToString().c_str());
  std::exit(status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
}

void CheckPositive(const char* flag, absl::Duration value) {
  if (value <= absl::ZeroDuration()) {
    Exit(absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be positive, not ", absl::FormatDuration(value))));
  }
}

size_t PositiveCount(const char* flag, int64_t value) {
  if (value <= 0) {
    Exit(absl::InvalidArgumentError(absl::StrCat("--", flag, " must be positive, not ", value)));
  }
  return static_cast<size_t>(value);
}

// A channel to `grpc_targets` (and the broker, if any); null when neither.
// `share_orphans`: the gateway keeps its operations in a database, which
// another gateway (or this one restarted) completes from the orphan queue.
std::shared_ptr<filemesh::FailoverChannel> ChannelTo(const std::string& grpc_targets,
                                                     const filemesh::AmqpOptions& amqp,
                                                     bool share_orphans) {
  filemesh::FailoverChannelOptions options;
  options.grpc_target = grpc_targets;
  options.grpc_tls.ca_file = absl::GetFlag(FLAGS_backend_ca);
  options.grpc_tls.cert_file = absl::GetFlag(FLAGS_backend_tls_cert);
  options.grpc_tls.key_file = absl::GetFlag(FLAGS_backend_tls_key);
  options.grpc_tls.server_name = absl::GetFlag(FLAGS_backend_server_name);
  options.amqp = amqp;
  options.late_reply_ttl = absl::GetFlag(FLAGS_late_reply_ttl);
  options.share_orphan_replies = share_orphans;
  options.orphan_reply_after = absl::GetFlag(FLAGS_orphan_reply_after);
  options.late_reply_capacity =
      PositiveCount("late_reply_capacity", absl::GetFlag(FLAGS_late_reply_capacity));
  options.late_reply_max_bytes =
      PositiveCount("late_reply_max_bytes", absl::GetFlag(FLAGS_late_reply_max_bytes));
  options.outbox_max_calls =
      PositiveCount("outbox_max_calls", absl::GetFlag(FLAGS_outbox_max_calls));
  options.outbox_max_bytes =
      PositiveCount("outbox_max_bytes", absl::GetFlag(FLAGS_outbox_max_bytes));
  options.callback_threads = absl::GetFlag(FLAGS_amqp_callback_threads);
  options.policy.attempt_timeout = absl::GetFlag(FLAGS_attempt_timeout);
  options.policy.breaker_cooldown = absl::GetFlag(FLAGS_breaker_cooldown);
  absl::StatusOr<size_t> max_message_bytes = filemesh_examples::MaxMessageBytesFromFlags();
  if (!max_message_bytes.ok()) Exit(max_message_bytes.status());
  options.max_message_bytes = *max_message_bytes;
  if (options.grpc_target.empty() && options.amqp.url.empty()) return nullptr;
  auto channel = filemesh::FailoverChannel::Create(options);
  if (!channel.ok()) Exit(channel.status());
  return *channel;
}

}  // namespace

int main(int argc, char** argv) {
  filemesh::TerminationSignals::Block();  // before any thread starts
  filemesh::TuneProcessForRpc();
  filemesh::ParseFlags(argc, argv,
                       "gateway: the filemesh REST API in front of mserv1 and mserv2.\n\n"
                       "  gateway [--listen HOST:PORT] [--lister_grpc TARGETS] "
                       "[--searcher_grpc TARGETS] [--amqp_url URL]");
  const std::string lister_grpc = absl::GetFlag(FLAGS_lister_grpc);
  const std::string searcher_grpc = absl::GetFlag(FLAGS_searcher_grpc);
  absl::StatusOr<filemesh::AmqpOptions> amqp = filemesh_examples::AmqpOptionsFromFlags();
  if (!amqp.ok()) Exit(amqp.status());
  amqp->service_users = absl::GetFlag(FLAGS_amqp_service_users);
  // The gateway's identity and trust toward the broker are its --backend_*
  // files unless --amqp_* ones are given (for a broker with a CA of its own).
  if (absl::StartsWith(amqp->url, "amqps://")) {
    if (amqp->tls.ca_file.empty()) amqp->tls.ca_file = absl::GetFlag(FLAGS_backend_ca);
    if (amqp->tls.cert_file.empty() && amqp->tls.key_file.empty()) {
      amqp->tls.cert_file = absl::GetFlag(FLAGS_backend_tls_cert);
      amqp->tls.key_file = absl::GetFlag(FLAGS_backend_tls_key);
    }
  }
  if (lister_grpc.empty() && searcher_grpc.empty() && amqp->url.empty()) {
    Exit(absl::InvalidArgumentError("set --lister_grpc, --searcher_grpc and/or --amqp_url"));
  }
  CheckPositive("request_timeout", absl::GetFlag(FLAGS_request_timeout));
  CheckPositive("attempt_timeout", absl::GetFlag(FLAGS_attempt_timeout));
  CheckPositive("breaker_cooldown", absl::GetFlag(FLAGS_breaker_cooldown));
  CheckPositive("operation_ttl", absl::GetFlag(FLAGS_operation_ttl));

  filemesh::RestGatewayOptions options;
  options.api_key = absl::GetFlag(FLAGS_api_key);
  options.api_keys_file = absl::GetFlag(FLAGS_api_keys_file);
  options.audit_log = absl::GetFlag(FLAGS_audit_log);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  // (An address without a port is HttpServer's to refuse, with its own words.)
  if (options.api_key.empty() && options.api_keys_file.empty() &&
      listen.find(':') != std::string::npos && !filemesh::IsLoopbackListenAddress(listen) &&
      !absl::GetFlag(FLAGS_allow_anonymous)) {
    Exit(absl::InvalidArgumentError(absl::StrCat(
        "--listen ", listen,
        " is reachable from the network, and without --api_key or --api_keys_file anyone there "
        "could list and search: give keys, listen on loopback, or pass --allow_anonymous")));
  }
  options.allowed_hosts = absl::GetFlag(FLAGS_allowed_hosts);
  if (options.allowed_hosts.empty()) {
    options.allowed_hosts = {"localhost", "127.0.0.1", "::1"};
    const std::string host = filemesh::HostWithoutPort(listen);
    if (host != "0.0.0.0" && host != "::") options.allowed_hosts.push_back(host);
  }
  options.request_timeout = absl::GetFlag(FLAGS_request_timeout);
  options.operations_db = absl::GetFlag(FLAGS_operations_db);
  if (options.operations_db.empty()) {
    // systemd's StateDirectory= (the Debian unit's /var/lib/filemesh-gateway).
    const char* state = std::getenv("STATE_DIRECTORY");
    if (state != nullptr && *state != '\0') {
      // Several directories come colon-separated: the first is ours.
      options.operations_db = absl::StrCat(
          std::string(state).substr(0, std::string(state).find(':')), "/operations.db");
    }
  }
  if (options.operations_db == ":memory:") options.operations_db.clear();
  options.operation_ttl = absl::GetFlag(FLAGS_operation_ttl);
  options.operation_capacity =
      PositiveCount("operation_capacity", absl::GetFlag(FLAGS_operation_capacity));
  options.operation_max_bytes =
      PositiveCount("operation_max_bytes", absl::GetFlag(FLAGS_operation_max_bytes));
  options.serve_ui = absl::GetFlag(FLAGS_ui);
  const bool share_orphans = !options.operations_db.empty();
  std::shared_ptr<filemesh::FailoverChannel> lister = ChannelTo(lister_grpc, *amqp, share_orphans);
  std::shared_ptr<filemesh::FailoverChannel> searcher =
      ChannelTo(searcher_grpc, *amqp, share_orphans);
  filemesh::RestGateway gateway(
      options,
      lister ? std::make_shared<filemesh::FileListerClient>(lister, options.request_timeout)
             : nullptr,
      searcher ? std::make_shared<filemesh::FileSearcherClient>(searcher, options.request_timeout)
               : nullptr);
  if (!gateway.status().ok()) Exit(gateway.status());
  // A route without a backend answers 503 to every call: say so at start,
  // not only in the answers.
  struct Backend {
    const char* name;
    const filemesh::FailoverChannel* channel;
    const char* routes;
    const char* flag;
  };
  for (const Backend& backend :
       {Backend{"lister", lister.get(), "/api/v1/files", "--lister_grpc"},
        Backend{"searcher", searcher.get(), "/api/v1/search", "--searcher_grpc"}}) {
    if (backend.channel != nullptr) continue;
    filemesh::LogEvent(filemesh::LogLevel::kWarning, "backend_missing",
                       {{"backend", backend.name},
                        {"routes", backend.routes},
                        {"answer", "503"},
                        {"hint", absl::StrCat("give ", backend.flag, " or --amqp_url")}});
  }
  filemesh::LogEvent(
      "gateway_configured",
      {{"lister_grpc", lister_grpc},
       {"searcher_grpc", searcher_grpc},
       {"amqp_url", filemesh::RedactUrl(amqp->url)},
       {"auth", options.api_key.empty() && options.api_keys_file.empty() ? "none" : "bearer"},
       {"audit_log", options.audit_log},
       {"operations_db",
        options.operations_db.empty() ? ":memory:" : filemesh::RedactUrl(options.operations_db)},
       {"allowed_hosts", absl::StrJoin(options.allowed_hosts, ",")},
       {"ui", options.serve_ui ? "on" : "off"}});

  filemesh::HttpServerOptions http;
  http.listen = listen;
  http.io_threads = absl::GetFlag(FLAGS_http_io_threads);
  http.max_connections = PositiveCount("max_connections", absl::GetFlag(FLAGS_max_connections));
  http.max_connections_per_client =
      PositiveCount("max_connections_per_client", absl::GetFlag(FLAGS_max_connections_per_client));
  http.max_buffered_response_bytes = PositiveCount(
      "max_buffered_response_bytes", absl::GetFlag(FLAGS_max_buffered_response_bytes));
  http.max_head_bytes = PositiveCount("max_head_bytes", absl::GetFlag(FLAGS_max_head_bytes));
  http.max_target_bytes = PositiveCount("max_target_bytes", absl::GetFlag(FLAGS_max_target_bytes));
  http.max_header_fields =
      PositiveCount("max_header_fields", absl::GetFlag(FLAGS_max_header_fields));
  http.max_body_bytes = PositiveCount("max_body_bytes", absl::GetFlag(FLAGS_max_body_bytes));
  http.head_timeout = absl::GetFlag(FLAGS_head_timeout);
  http.body_timeout = absl::GetFlag(FLAGS_body_timeout);
  http.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  http.write_timeout = absl::GetFlag(FLAGS_write_timeout);
  http.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  http.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  http.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  http.hsts_max_age = absl::GetFlag(FLAGS_hsts_max_age);
  // One descriptor per connection, plus room for the backends and logs.
  const long fd_limit = filemesh::RaiseOpenFileLimit(static_cast<long>(http.max_connections) + 256);
  if (fd_limit < static_cast<long>(http.max_connections) + 64) {
    filemesh::LogEvent(filemesh::LogLevel::kWarning, "open_file_limit_low",
                       {{"limit", absl::StrCat(fd_limit)},
                        {"max_connections", absl::StrCat(http.max_connections)}});
  }
  filemesh::HttpServer server(http);
  absl::Status started =
      server.Start([&gateway](filemesh::HttpRequest r, filemesh::HttpResponder respond) {
        gateway.HandleAsync(r, std::move(respond));
      });
  if (!started.ok()) Exit(started);

  filemesh::TerminationSignals::Wait();
  // Stops accepting, closes idle and stalled connections, answers the
  // requests in flight (within --shutdown_grace); the gateway's destructor
  // then waits for backend calls still running (within --request_timeout).
  server.Shutdown();
  return 0;
}
