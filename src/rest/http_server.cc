// HttpServer on Boost.Beast and Asio, in the shape of Beast's own
// `http_server_async` example: one Session per connection, its buffer,
// parser and timer owned by it, every step a completion on the
// connection's strand. No thread waits on a connection or on a handler.

#include "filemesh/rest/http_server.hpp"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/absl_compat.h"
#include "base/cpus.h"
#include "base/percent_encoding.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/service/log.hpp"
#include "rest/problem.h"
#include "rest/server_tls.h"
#include "service/tls_files.h"

namespace filemesh {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<tcp::socket>;
using internal::AbslView;
using Strand = asio::strand<asio::io_context::executor_type>;
using Clock = std::chrono::steady_clock;

// A request body type that counts and drops what it is given: bodies are
// read off the connection (within the parser's body_limit) and never held.
struct DiscardBody {
  struct value_type {};

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>& /*header*/, value_type& /*body*/) {}
    void init(const boost::optional<std::uint64_t>& /*length*/, beast::error_code& ec) { ec = {}; }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      ec = {};
      return asio::buffer_size(buffers);
    }
    void finish(beast::error_code& ec) { ec = {}; }
  };
};

using RequestParser = http::request_parser<DiscardBody>;

// Fills the request's path and query from the raw request target.
absl::Status ParseTarget(std::string_view target, HttpRequest* request) {
  if (const size_t hash = target.find('#'); hash != std::string_view::npos) {
    target = target.substr(0, hash);
  }
  const size_t question = target.find('?');
  if (!internal::PercentDecode(target.substr(0, question), /*plus_is_space=*/false,
                               &request->path)) {
    return absl::InvalidArgumentError("the request path has a malformed percent escape");
  }
  if (question == std::string_view::npos) return absl::OkStatus();
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string name;
    std::string value;
    if (!internal::PercentDecode(pair.substr(0, eq), /*plus_is_space=*/true, &name) ||
        (eq != std::string_view::npos &&
         !internal::PercentDecode(pair.substr(eq + 1), /*plus_is_space=*/true, &value))) {
      return absl::InvalidArgumentError(
          "a query parameter has a malformed percent escape (write '%' as %25)");
    }
    request->query.emplace_back(std::move(name), std::move(value));
  }
  return absl::OkStatus();
}

// "host" and port of a listen address; brackets removed from IPv6 hosts.
absl::Status SplitListenAddress(const std::string& listen, std::string* host, int* port) {
  const auto bad = [&listen](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTP listen address \"", listen, "\" ", AbslView(why)));
  };
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return bad("is not host:port");
  std::string_view h = std::string_view(listen).substr(0, colon);
  const std::string_view p = std::string_view(listen).substr(colon + 1);
  if (!h.empty() && h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return bad("has a malformed [IPv6] host");
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string_view::npos) {
    return bad("needs brackets around an IPv6 host (\"[::1]:8080\")");
  }
  if (h.empty()) return bad("has no host (use 0.0.0.0 for every interface)");
  if (p.empty() || p.size() > 5 ||
      !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(AbslView(p), port) || *port > 65535) {
    return bad("has no port between 0 and 65535");
  }
  host->assign(h);
  return absl::OkStatus();
}

// "ip:port" or "[ipv6]:port" of an endpoint.
std::string EndpointText(const tcp::endpoint& endpoint) {
  const std::string ip = endpoint.address().to_string();
  return endpoint.address().is_v6() ? absl::StrCat("[", ip, "]:", endpoint.port())
                                    : absl::StrCat(ip, ":", endpoint.port());
}

// The Date header's value (RFC 9110 IMF-fixdate), formatted once a second
// per thread.
const std::string& HttpDate() {
  thread_local std::time_t cached_second = 0;
  thread_local std::string cached;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[64];
    const size_t n = std::strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(text, n);
    cached_second = now;
  }
  return cached;
}

// A header field the handler set may go on the wire: a token name and a
// value without CR, LF or NUL (no response splitting).
bool IsSafeField(const std::string& name, const std::string& value) {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!token || c == '\0') return false;
  }
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

// Fields the server writes itself; a handler's copy is dropped.
bool IsServerField(const std::string& name) {
  return absl::EqualsIgnoreCase(name, "content-length") ||
         absl::EqualsIgnoreCase(name, "transfer-encoding") ||
         absl::EqualsIgnoreCase(name, "connection") || absl::EqualsIgnoreCase(name, "date") ||
         absl::EqualsIgnoreCase(name, "content-type");
}

// What a server-side refusal says, as a problem document.
HttpResponse Refusal(int http_status, std::string_view detail) {
  const absl::StatusCode code = http_status == 408   ? absl::StatusCode::kDeadlineExceeded
                                : http_status == 503 ? absl::StatusCode::kUnavailable
                                : http_status == 500 ? absl::StatusCode::kInternal
                                                     : absl::StatusCode::kInvalidArgument;
  return internal::ProblemWithHttpStatus(http_status, absl::Status(code, AbslView(detail)), "");
}

class Session;

// What every connection shares: options, handler, the event loop, the
// registry of open connections (for Shutdown). Held by shared_ptr: a
// responder that outlives the server keeps it (and so the io_context its
// strands post to) alive. The io_context is the last member, destroyed
// first: the sessions its pending handlers own unregister from the rest.
struct Core {
  explicit Core(HttpServerOptions o) : options(std::move(o)) {}

  void Register(Session* session);
  void Unregister(Session* session);
  // Closes every connection that is not waiting for its handler's answer
  // (all of them when `everything`); on the connections' strands.
  void CloseConnections(bool everything);
  // Waits until no connection is open, or `deadline`.
  void WaitForNoConnections(absl::Time deadline);

  // Counts a failed TLS handshake; logs the first and every 100th.
  void NoteHandshakeFailure(const std::string& peer, const std::string& reason);
  // Takes one of `client`'s connections (its IP address); false past
  // max_connections_per_client. ReleaseClient gives it back.
  bool AdmitClient(const std::string& client);
  void ReleaseClient(const std::string& client);

  const HttpServerOptions options;
  // Set when the server speaks HTTPS.
  std::unique_ptr<internal::ServerTlsContext> tls;
  // "Strict-Transport-Security: ...\r\n" for responses over TLS; empty: none.
  std::string hsts_field;
  std::weak_ptr<Core> shared_self;
  std::atomic<uint64_t> handshake_failures{0};
  AsyncHttpHandler handler;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> open{0};
  // Bytes of responses being written (max_buffered_response_bytes).
  std::atomic<size_t> buffered{0};
  std::atomic<uint64_t> responses_refused{0};

  internal::Mutex clients_mu;
  std::unordered_map<std::string, size_t> per_client ABSL_GUARDED_BY(clients_mu);

  internal::Mutex mu;
  // Signalled when `open` falls to 0.
  internal::CondVar cv{&mu};
  std::unordered_set<Session*> sessions ABSL_GUARDED_BY(mu);

  asio::io_context io;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `tls_context` is null for plain HTTP.
  Session(Core* core, tcp::socket socket, std::shared_ptr<asio::ssl::context> tls_context,
          std::string client)
      : core_(core),
        client_(std::move(client)),
        socket_(std::move(socket)),
        tls_context_(std::move(tls_context)),
        strand_(asio::make_strand(core->io.get_executor())),
        timer_(core->io),
        buffer_(std::max<size_t>(core->options.max_head_bytes + 4096, 8192)) {
    beast::error_code ec;
    const tcp::endpoint peer = socket_.remote_endpoint(ec);
    if (!ec) remote_ = EndpointText(peer);
    socket_.set_option(tcp::no_delay(true), ec);
    if (tls_context_ != nullptr) tls_.emplace(std::move(socket_), *tls_context_);
  }

  ~Session() {
    ReleaseResources();
    core_->Unregister(this);
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Sessions are made on the acceptor's strand; everything after runs on
  // their own (the socket was accepted onto it).
  void Start() {
    core_->Register(this);
    asio::dispatch(strand_, [self = shared_from_this()] {
      if (self->tls_) return self->Handshake();
      self->WaitForRequest();
    });
  }

  // Shutdown: from any thread.
  void Stop(bool everything) {
    asio::post(strand_, [self = shared_from_this(), everything] {
      self->keep_alive_ = false;
      if (everything || self->phase_ == Phase::kHandshake || self->phase_ == Phase::kIdle ||
          self->phase_ == Phase::kHead || self->phase_ == Phase::kBody) {
        self->Close();
      }
    });
  }

 private:
  enum class Phase { kHandshake, kIdle, kHead, kBody, kHandling, kWriting, kClosed };

  // The TCP socket, under TLS or not.
  tcp::socket& Socket() { return tls_ ? tls_->next_layer() : socket_; }

  // Runs `op` with the stream requests and responses travel on: the TLS
  // stream, or the socket itself.
  template <class Op>
  void WithStream(Op&& op) {
    if (tls_) {
      op(*tls_);
    } else {
      op(socket_);
    }
  }

  // Sets the current phase's deadline. The one timer is moved only when the
  // new deadline comes before its expiry; otherwise it fires first, finds
  // the deadline not reached and waits again. A request's phases so cost
  // about one timer operation instead of one each.
  void Arm(absl::Duration timeout) {
    deadline_ = Clock::now() + absl::ToChronoNanoseconds(timeout);
    if (timer_waiting_ && timer_expiry_ <= deadline_) return;
    StartTimer(deadline_);
  }
  void Disarm() { deadline_ = Clock::time_point::max(); }

  void StartTimer(Clock::time_point when) {
    timer_expiry_ = when;
    timer_waiting_ = true;
    timer_.expires_at(when);  // a wait pending ends with operation_aborted
    timer_.async_wait(asio::bind_executor(
        strand_, [self = shared_from_this()](beast::error_code ec) { self->OnTimer(ec); }));
  }

  void OnTimer(beast::error_code ec) {
    if (ec == asio::error::operation_aborted) return;  // moved, or closed
    timer_waiting_ = false;
    if (phase_ == Phase::kClosed || deadline_ == Clock::time_point::max()) return;
    if (Clock::now() < deadline_) return StartTimer(deadline_);
    deadline_ = Clock::time_point::max();
    OnTimeout();
  }

  void OnTimeout() {
    switch (phase_) {
      case Phase::kIdle:
      case Phase::kWriting:
        Close();  // an idle keep-alive, or a peer that does not read
        return;
      case Phase::kHandshake:
      case Phase::kHead:
      case Phase::kBody:
        timed_out_ = true;
        Socket().cancel();  // the read ends with operation_aborted: 408
        return;
      case Phase::kHandling:
      case Phase::kClosed:
        return;
    }
  }

  // The TLS handshake, within the head timeout: a peer that stalls in it
  // holds the connection no longer than one that stalls in a request head.
  void Handshake() {
    phase_ = Phase::kHandshake;
    timed_out_ = false;
    Arm(core_->options.head_timeout);
    tls_->async_handshake(
        asio::ssl::stream_base::server,
        asio::bind_executor(
            strand_, [self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); }));
  }

  void OnHandshake(beast::error_code ec) {
    if (phase_ != Phase::kHandshake) return;
    Disarm();
    if (!ec) return WaitForRequest();
    if (timed_out_) {
      core_->NoteHandshakeFailure(
          remote_,
          absl::StrCat("no handshake within ", absl::FormatDuration(core_->options.head_timeout)));
    } else if (ec.category() == asio::error::get_ssl_category() &&
               ERR_GET_REASON(
                   static_cast<unsigned long>(ec.value())) ==  // NOLINT(google-runtime-int)
                   SSL_R_HTTP_REQUEST) {
      // Plain HTTP on the HTTPS port: say so in plain HTTP, once, without
      // waiting (as for Turn503), so that the client shows a reason.
      static const std::string kResponse = [] {
        const HttpResponse problem =
            Refusal(400, "this port speaks HTTPS: send the request to https:// instead of http://");
        return absl::StrCat("HTTP/1.1 400 Bad Request\r\nContent-Type: ", problem.content_type,
                            "\r\nContent-Length: ", problem.body.size(),
                            "\r\nConnection: close\r\n\r\n", problem.body);
      }();
      (void)!::send(Socket().native_handle(), kResponse.data(), kResponse.size(),
                    MSG_DONTWAIT | MSG_NOSIGNAL);
      core_->NoteHandshakeFailure(remote_, "plain HTTP sent to the HTTPS port");
    } else if (ec != asio::error::eof && ec != asio::error::connection_reset &&
               ec != asio::ssl::error::stream_truncated) {
      core_->NoteHandshakeFailure(remote_, ec.message());
    }
    Close();
  }

  // Waits for the next request's first byte without holding a buffer.
  void WaitForRequest() {
    if (core_->stopping.load()) return Close();
    if (buffer_.size() > 0) return ReadHead();  // pipelined
    phase_ = Phase::kIdle;
    // A new connection gets the head timeout for its first byte: only a
    // client that has made a request may idle for idle_timeout.
    Arm(requests_ == 0 ? core_->options.head_timeout : core_->options.idle_timeout);
    if (tls_) return AwaitFirstBytesTls();
    buffer_.shrink_to_fit();  // an idle connection holds no buffer
    AwaitFirstByte();
  }

  // The idle phase's wait under TLS: readiness of the socket says nothing
  // of the bytes OpenSSL already holds, so the wait is a read of whatever
  // comes first (the buffer is small next to what OpenSSL keeps for the
  // connection anyway).
  void AwaitFirstBytesTls() {
    static constexpr size_t kFirstRead = 4096;
    tls_->async_read_some(
        buffer_.prepare(kFirstRead),
        asio::bind_executor(strand_, [self = shared_from_this()](beast::error_code ec, size_t n) {
          if (self->phase_ != Phase::kIdle) return;
          if (ec) return self->Close();
          self->buffer_.commit(n);
          if (n == 0) return self->AwaitFirstBytesTls();
          self->ReadHead();
        }));
  }

  // The idle phase's wait. Readiness can be stale (epoll reports an edge
  // after the bytes it announced were read with the previous request), so
  // the phase ends only when a byte or the end of the stream is there;
  // otherwise it waits again, within the same idle deadline.
  void AwaitFirstByte() {
    socket_.async_wait(
        tcp::socket::wait_read,
        asio::bind_executor(strand_, [self = shared_from_this()](beast::error_code ec) {
          if (self->phase_ != Phase::kIdle) return;
          if (ec) return self->Close();
          char byte;
          const ssize_t peeked =
              ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
          if (peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return self->AwaitFirstByte();
          }
          self->ReadHead();  // a byte, the end, or an error: the read says which
        }));
  }

  void ReadHead() {
    phase_ = Phase::kHead;
    timed_out_ = false;
    parser_.emplace();
    parser_->header_limit(
        static_cast<std::uint32_t>(std::min<size_t>(core_->options.max_head_bytes, UINT32_MAX)));
    parser_->body_limit(core_->options.max_body_bytes);
    Arm(core_->options.head_timeout);
    WithStream([this](auto& stream) {
      http::async_read_header(
          stream, buffer_, *parser_,
          asio::bind_executor(strand_, [self = shared_from_this()](beast::error_code ec, size_t) {
            self->OnHead(ec);
          }));
    });
  }

  // The status for a head that did not parse; 0: close without answering.
  int HeadErrorStatus(beast::error_code ec, std::string* detail) const {
    if (timed_out_) {
      *detail = absl::StrCat("the request head did not arrive within ",
                             absl::FormatDuration(core_->options.head_timeout));
      return 408;
    }
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::ssl::error::stream_truncated) {
      return 0;
    }
    if (ec == http::error::partial_message) return 0;  // the peer closed mid-head
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      // The parser keeps the request line once it has it (and the buffer
      // no longer does): without one, the line itself was too long, and a
      // request line is long by its target.
      if (parser_->get().target().empty()) {
        *detail = absl::StrCat("the request target is longer than ",
                               core_->options.max_target_bytes, " bytes");
        return 414;
      }
      *detail =
          absl::StrCat("the request head is larger than ", core_->options.max_head_bytes, " bytes");
      return 431;
    }
    if (ec == http::error::body_limit) {  // a Content-Length over the limit
      *detail =
          absl::StrCat("the request body is larger than ", core_->options.max_body_bytes, " bytes");
      return 413;
    }
    if (ec == http::error::bad_content_length || ec == http::error::bad_transfer_encoding) {
      *detail = absl::StrCat("malformed HTTP request: ", ec.message(),
                             " (Content-Length and Transfer-Encoding must not both be sent, and "
                             "Content-Length at most once)");
      return 400;
    }
    *detail = absl::StrCat("malformed HTTP request: ", ec.message());
    return 400;
  }

  void OnHead(beast::error_code ec) {
    if (phase_ != Phase::kHead) return;
    if (ec) {
      std::string detail;
      const int status = HeadErrorStatus(ec, &detail);
      if (status == 0) return Close();
      return Refuse(status, detail);
    }
    const auto& head = parser_->get();
    if (head.target().size() > core_->options.max_target_bytes) {
      return Refuse(414, absl::StrCat("the request target is longer than ",
                                      core_->options.max_target_bytes, " bytes"));
    }
    size_t fields = 0;
    int content_lengths = 0;
    bool transfer_encoding = false;
    for (const auto& field : head) {
      ++fields;
      if (field.name() == http::field::content_length) ++content_lengths;
      if (field.name() == http::field::transfer_encoding) transfer_encoding = true;
    }
    if (fields > core_->options.max_header_fields) {
      return Refuse(431, absl::StrCat("the request has more than ",
                                      core_->options.max_header_fields, " header fields"));
    }
    if ((content_lengths > 0 && transfer_encoding) || content_lengths > 1) {
      return Refuse(400,
                    "malformed HTTP request: Content-Length and Transfer-Encoding must not both "
                    "be sent, and Content-Length at most once");
    }
    if (parser_->is_done()) return Dispatch();
    // A body follows: read and drop it, after a 100 Continue if asked.
    const auto expect = head.find(http::field::expect);
    if (expect != head.end() &&
        absl::EqualsIgnoreCase(
            AbslView(std::string_view(expect->value().data(), expect->value().size())),
            "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      phase_ = Phase::kBody;
      Arm(core_->options.write_timeout);
      WithStream([this](auto& stream) {
        asio::async_write(
            stream, asio::buffer(kContinue.data(), kContinue.size()),
            asio::bind_executor(strand_, [self = shared_from_this()](beast::error_code e, size_t) {
              if (self->phase_ != Phase::kBody) return;
              if (e) return self->Close();
              self->ReadBody();
            }));
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    phase_ = Phase::kBody;
    timed_out_ = false;
    Arm(core_->options.body_timeout);
    WithStream([this](auto& stream) {
      http::async_read(
          stream, buffer_, *parser_,
          asio::bind_executor(strand_, [self = shared_from_this()](beast::error_code ec, size_t) {
            self->OnBody(ec);
          }));
    });
  }

  void OnBody(beast::error_code ec) {
    if (phase_ != Phase::kBody) return;
    if (!ec) return Dispatch();
    if (timed_out_) {
      return Refuse(408, absl::StrCat("the request body did not arrive within ",
                                      absl::FormatDuration(core_->options.body_timeout)));
    }
    if (ec == http::error::body_limit) {
      return Refuse(413, absl::StrCat("the request body is larger than ",
                                      core_->options.max_body_bytes, " bytes"));
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == asio::ssl::error::stream_truncated) {
      return Close();
    }
    Refuse(400, absl::StrCat("malformed HTTP request body: ", ec.message()));
  }

  // Hands the parsed request to the handler; its responder brings the
  // answer back to this strand.
  void Dispatch() {
    Disarm();
    const auto& head = parser_->get();
    HttpRequest request;
    request.method = std::string(head.method_string());
    request.remote_address = remote_;
    request.headers.reserve(16);
    for (const auto& field : head) {
      request.headers.emplace_back(absl::AsciiStrToLower(AbslView(std::string_view(
                                       field.name_string().data(), field.name_string().size()))),
                                   std::string(field.value()));
    }
    head_request_ = head.method() == http::verb::head;
    ++requests_;
    keep_alive_ = parser_->keep_alive() && !core_->stopping.load() &&
                  requests_ < core_->options.keep_alive_max_requests;
    const std::string_view target(head.target().data(), head.target().size());
    const absl::Status parsed = ParseTarget(target, &request);
    parser_.reset();
    phase_ = Phase::kHandling;
    if (!parsed.ok()) {
      return Write(internal::ProblemWithHttpStatus(400, parsed, ""));
    }
    HttpResponder respond(
        [core = core_->shared_self.lock(), self = shared_from_this()](HttpResponse response) {
          asio::post(self->strand_, [self, response = std::move(response)]() mutable {
            if (self->phase_ == Phase::kHandling) self->Write(std::move(response));
          });
        });
    try {
      core_->handler(std::move(request), std::move(respond));
    } catch (const std::exception& e) {
      LogEvent(LogLevel::kError, "http_handler_failed", {{"error", e.what()}});
    } catch (...) {
      LogEvent(LogLevel::kError, "http_handler_failed", {{"error", "unknown"}});
    }
    // A handler that threw dropped its responder: it answers 500.
  }

  // A refusal of the server's own: the problem, then the connection closes.
  void Refuse(int status, std::string_view detail) {
    Disarm();
    parser_.reset();
    keep_alive_ = false;
    head_request_ = false;
    phase_ = Phase::kHandling;
    Write(Refusal(status, detail));
  }

  void Write(HttpResponse response) {
    if (phase_ == Phase::kClosed) return;
    if (core_->stopping.load()) keep_alive_ = false;
    // Small answers always go; a large one that would take the responses
    // waiting for their clients past the bound is refused instead.
    static constexpr size_t kAlwaysBuffered = size_t{64} * 1024;
    if (response.body.size() > kAlwaysBuffered && core_->buffered.load() + response.body.size() >
                                                      core_->options.max_buffered_response_bytes) {
      const uint64_t refused = core_->responses_refused.fetch_add(1) + 1;
      if (refused % 1000 == 1) {
        LogEvent(LogLevel::kWarning, "http_response_refused",
                 {{"reason", "max_buffered_response_bytes"},
                  {"bytes", absl::StrCat(response.body.size())},
                  {"buffered", absl::StrCat(core_->buffered.load())},
                  {"refused_so_far", absl::StrCat(refused)}});
      }
      response = Refusal(503,
                         "the server holds as many response bytes for slow clients as it may "
                         "(max_buffered_response_bytes); try again shortly");
      response.headers.emplace_back("Retry-After", "1");
    }
    const int status = response.status;
    if (response.content_type.empty() && response.body.empty() && status >= 400) {
      response = Refusal(status, HttpReasonPhrase(status));
    }
    const bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    std::string& out = head_out_;
    out.clear();
    absl::StrAppend(&out, "HTTP/1.1 ", status, " ", AbslView(HttpReasonPhrase(status)),
                    "\r\nDate: ", HttpDate(), "\r\n");
    if (!response.content_type.empty() || !response.body.empty()) {
      absl::StrAppend(
          &out, "Content-Type: ",
          response.content_type.empty() ? "application/octet-stream" : response.content_type,
          "\r\n");
    }
    for (const auto& [name, value] : response.headers) {
      if (IsServerField(name)) continue;
      if (!IsSafeField(name, value)) {
        LogEvent(LogLevel::kWarning, "http_header_dropped", {{"name", name}});
        continue;
      }
      absl::StrAppend(&out, name, ": ", value, "\r\n");
    }
    if (tls_) out.append(core_->hsts_field);
    if (!no_body) absl::StrAppend(&out, "Content-Length: ", response.body.size(), "\r\n");
    if (!keep_alive_) out.append("Connection: close\r\n");
    out.append("\r\n");
    body_out_ = no_body || head_request_ ? std::string() : std::move(response.body);
    // OpenSSL writes each buffer of a sequence as records of its own: a
    // small body goes with the head, in one record and one TCP segment.
    static constexpr size_t kJoinedBody = size_t{16} * 1024;
    if (tls_ && !body_out_.empty() && body_out_.size() <= kJoinedBody) {
      head_out_.append(body_out_);
      body_out_.clear();
    }

    buffered_ = head_out_.size() + body_out_.size();
    core_->buffered.fetch_add(buffered_);
    phase_ = Phase::kWriting;
    Arm(core_->options.write_timeout);
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head_out_),
                                                       asio::buffer(body_out_)};
    WithStream([this, &buffers](auto& stream) {
      asio::async_write(
          stream, buffers,
          asio::bind_executor(strand_, [self = shared_from_this()](beast::error_code ec, size_t) {
            self->OnWritten(ec);
          }));
    });
  }

  void OnWritten(beast::error_code ec) {
    if (phase_ != Phase::kWriting) return;
    Disarm();
    core_->buffered.fetch_sub(buffered_);
    buffered_ = 0;
    head_out_.clear();
    head_out_.shrink_to_fit();
    body_out_ = std::string();
    if (ec || !keep_alive_) return Close();
    WaitForRequest();
  }

  // What the session counts against the server's bounds; once.
  void ReleaseResources() {
    core_->buffered.fetch_sub(buffered_);
    buffered_ = 0;
    if (!client_.empty()) core_->ReleaseClient(client_);
    client_.clear();
  }

  void Close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    Disarm();
    ReleaseResources();
    timer_.cancel();  // its wait holds this session
    // Under TLS no close_notify is sent: responses carry their length, and
    // waiting for the peer's would let it hold the connection.
    beast::error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_both, ignored);
    Socket().close(ignored);
    // The parser and the buffer stay: a read still pending on them ends
    // (operation_aborted) after this, and they go with the session.
    if (core_->open.fetch_sub(1) == 1) {
      internal::MutexLock lock(&core_->mu);
      core_->cv.SignalAll();
    }
  }

  Core* const core_;
  // The client's IP address, counted in Core::per_client until released.
  std::string client_;
  // This session's part of Core::buffered.
  size_t buffered_ = 0;
  tcp::socket socket_;  // moved into tls_ under TLS
  // The context outlives the stream made with it.
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::optional<TlsStream> tls_;
  Strand strand_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  std::string remote_;
  std::string head_out_;
  std::string body_out_;
  Phase phase_ = Phase::kIdle;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point timer_expiry_;
  bool timer_waiting_ = false;
  int requests_ = 0;
  bool keep_alive_ = true;
  bool head_request_ = false;
  bool timed_out_ = false;
};

void Core::NoteHandshakeFailure(const std::string& peer, const std::string& reason) {
  const uint64_t failures = handshake_failures.fetch_add(1) + 1;
  if (failures % 100 != 1) return;
  LogEvent(LogLevel::kWarning, "tls_handshake_failed",
           {{"peer", peer}, {"reason", reason}, {"failures_so_far", absl::StrCat(failures)}});
}

bool Core::AdmitClient(const std::string& client) {
  internal::MutexLock lock(&clients_mu);
  size_t& count = per_client[client];
  if (count >= options.max_connections_per_client) {
    if (count == 0) per_client.erase(client);
    return false;
  }
  ++count;
  return true;
}

void Core::ReleaseClient(const std::string& client) {
  internal::MutexLock lock(&clients_mu);
  auto it = per_client.find(client);
  if (it == per_client.end()) return;
  if (--it->second == 0) per_client.erase(it);
}

void Core::Register(Session* session) {
  internal::MutexLock lock(&mu);
  sessions.insert(session);
}

void Core::Unregister(Session* session) {
  internal::MutexLock lock(&mu);
  sessions.erase(session);
}

void Core::WaitForNoConnections(absl::Time deadline) {
  internal::MutexLock lock(&mu);
  while (open.load() != 0) {
    if (cv.WaitUntil(deadline)) break;
  }
}

void Core::CloseConnections(bool everything) {
  std::vector<std::shared_ptr<Session>> live;
  {
    internal::MutexLock lock(&mu);
    live.reserve(sessions.size());
    for (Session* session : sessions) {
      // A session being destroyed (its count already zero) is skipped.
      if (std::shared_ptr<Session> held = session->weak_from_this().lock()) {
        live.push_back(std::move(held));
      }
    }
  }
  for (const auto& session : live) session->Stop(everything);
}

// Accepts connections on its own strand; a connection past max_connections
// gets a 503 written without waiting and is closed.
class Acceptor : public std::enable_shared_from_this<Acceptor> {
 public:
  Acceptor(Core* core, tcp::acceptor acceptor)
      : core_(core),
        strand_(asio::make_strand(core->io.get_executor())),
        acceptor_(std::move(acceptor)),
        retry_(core->io) {}

  void Start() {
    asio::dispatch(strand_, [self = shared_from_this()] { self->Accept(); });
  }
  void Stop() {
    asio::post(strand_, [self = shared_from_this()] {
      self->stopped_ = true;
      beast::error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_.cancel();
    });
  }

 private:
  void Accept() {
    if (stopped_) return;
    acceptor_.async_accept(
        core_->io, asio::bind_executor(strand_, [self = shared_from_this()](beast::error_code ec,
                                                                            tcp::socket socket) {
          self->OnAccept(ec, std::move(socket));
        }));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (stopped_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors (or another passing error): the pending
      // connection stays in the backlog; try again shortly instead of
      // spinning on the same error.
      const auto now = std::chrono::steady_clock::now();
      if (now - last_error_log_ > std::chrono::seconds(1)) {
        last_error_log_ = now;
        LogEvent(LogLevel::kWarning, "http_accept_failed", {{"error", ec.message()}});
      }
      retry_.expires_after(std::chrono::milliseconds(50));
      retry_.async_wait(
          asio::bind_executor(strand_, [self = shared_from_this()](beast::error_code e) {
            if (!e) self->Accept();
          }));
      return;
    }
    beast::error_code peer_error;
    const tcp::endpoint peer = socket.remote_endpoint(peer_error);
    std::string client = peer_error ? std::string() : peer.address().to_string();
    if (core_->open.load() >= core_->options.max_connections || core_->stopping.load()) {
      Turn503(socket, /*per_client=*/false);
    } else if (!client.empty() && !core_->AdmitClient(client)) {
      Turn503(socket, /*per_client=*/true);
    } else {
      core_->open.fetch_add(1);
      std::make_shared<Session>(core_, std::move(socket),
                                core_->tls != nullptr ? core_->tls->Current() : nullptr,
                                std::move(client))
          ->Start();
    }
    Accept();
  }

  // One non-blocking send of a fixed 503; what the kernel does not take is
  // lost with the connection, never waited for.
  void Turn503(tcp::socket& socket, bool per_client) {
    static const auto wire = [](std::string_view detail) {
      const HttpResponse problem = Refusal(503, detail);
      return absl::StrCat("HTTP/1.1 503 Service Unavailable\r\nContent-Type: ",
                          problem.content_type, "\r\nContent-Length: ", problem.body.size(),
                          "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n", problem.body);
    };
    static const std::string kAll = wire("the server has as many connections open as it serves");
    static const std::string kClient =
        wire("this client has as many connections open as the server allows one client");
    const std::string& kResponse = per_client ? kClient : kAll;
    // Under TLS nothing can be said before a handshake: the connection is
    // only closed.
    if (core_->tls == nullptr) {
      (void)!::send(socket.native_handle(), kResponse.data(), kResponse.size(),
                    MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    if (++refused_ % 1000 == 1) {
      LogEvent(
          LogLevel::kWarning, "http_connection_refused",
          {{"reason", per_client ? "max_connections_per_client" : "max_connections"},
           {"max_connections", absl::StrCat(core_->options.max_connections)},
           {"max_connections_per_client", absl::StrCat(core_->options.max_connections_per_client)},
           {"refused_so_far", absl::StrCat(refused_)}});
    }
  }

  Core* const core_;
  Strand strand_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  bool stopped_ = false;
  uint64_t refused_ = 0;
  std::chrono::steady_clock::time_point last_error_log_{};
};

// InvalidArgument for options no server can run with.
absl::Status CheckOptions(const HttpServerOptions& o) {
  if (o.io_threads < 0) return absl::InvalidArgumentError("HTTP io_threads must be 0 or more");
  if (o.keep_alive_max_requests < 1) {
    return absl::InvalidArgumentError("keep_alive_max_requests must be at least 1");
  }
  if (o.max_connections < 1 || o.max_connections_per_client < 1 ||
      o.max_buffered_response_bytes < 1 || o.max_head_bytes < 256 || o.max_target_bytes < 1 ||
      o.max_header_fields < 1) {
    return absl::InvalidArgumentError("HTTP limits must be positive (max_head_bytes at least 256)");
  }
  if (o.head_timeout <= absl::ZeroDuration() || o.body_timeout <= absl::ZeroDuration() ||
      o.idle_timeout <= absl::ZeroDuration() || o.write_timeout <= absl::ZeroDuration() ||
      o.shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("HTTP timeouts must be positive");
  }
  if (o.hsts_max_age < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("hsts_max_age must not be negative");
  }
  return absl::OkStatus();
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  std::shared_ptr<Core> core;
  std::shared_ptr<Acceptor> acceptor;
  std::vector<std::thread> threads;
  int port = 0;
  std::string address;

  internal::Mutex mu;
  internal::CondVar cv{&mu};
  bool started ABSL_GUARDED_BY(mu) = false;
  bool shutting_down ABSL_GUARDED_BY(mu) = false;
  // Shutdown() has finished.
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

HttpServer::~HttpServer() {
  try {
    Shutdown();
  } catch (...) {
    // Nothing to do in a destructor: the process is going down with it.
  }
}

absl::Status HttpServer::Start(HttpHandler handler) {
  if (!handler) return absl::InvalidArgumentError("no HTTP handler");
  return Start([handler = std::move(handler)](HttpRequest request, const HttpResponder& respond) {
    HttpResponse response;
    try {
      response = handler(request);
    } catch (const std::exception& e) {
      LogEvent(LogLevel::kError, "http_handler_failed",
               {{"method", request.method}, {"path", request.path}, {"error", e.what()}});
      response = internal::ProblemWithHttpStatus(
          500, absl::InternalError("the request handler failed"), "");
    } catch (...) {
      LogEvent(LogLevel::kError, "http_handler_failed",
               {{"method", request.method}, {"path", request.path}, {"error", "unknown"}});
      response = internal::ProblemWithHttpStatus(
          500, absl::InternalError("the request handler failed"), "");
    }
    respond(std::move(response));
  });
}

absl::Status HttpServer::Start(AsyncHttpHandler handler) {
  internal::MutexLock lock(&impl_->mu);
  if (impl_->started) return absl::FailedPreconditionError("the HTTP server was already started");
  const HttpServerOptions& o = impl_->options;
  if (!handler) return absl::InvalidArgumentError("no HTTP handler");
  if (absl::Status checked = CheckOptions(o); !checked.ok()) return checked;
  std::unique_ptr<internal::ServerTlsContext> tls;
  if (o.tls.enabled()) {
    absl::StatusOr<std::unique_ptr<internal::ServerTlsContext>> made =
        internal::ServerTlsContext::Create(o.tls);
    if (!made.ok()) return made.status();
    tls = *std::move(made);
  }
  std::string host;
  int port = 0;
  if (absl::Status status = SplitListenAddress(o.listen, &host, &port); !status.ok()) {
    return status;
  }
  auto core = std::make_shared<Core>(o);
  core->shared_self = core;
  core->handler = std::move(handler);
  core->tls = std::move(tls);
  if (core->tls != nullptr && o.hsts_max_age > absl::ZeroDuration()) {
    core->hsts_field = absl::StrCat(
        "Strict-Transport-Security: max-age=", absl::ToInt64Seconds(o.hsts_max_age), "\r\n");
  }

  beast::error_code ec;
  tcp::resolver resolver(core->io);
  const auto endpoints = resolver.resolve(
      host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTP listen address \"", o.listen, "\" does not resolve: ", ec.message()));
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  tcp::acceptor acceptor(core->io);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for HTTP on \"", o.listen, "\": ", ec.message()));
  }
  const tcp::endpoint bound = acceptor.local_endpoint(ec);
  impl_->port = bound.port();
  impl_->address = absl::StrCat(o.listen.substr(0, o.listen.rfind(':')), ":", bound.port());
  impl_->core = core;
  impl_->acceptor = std::make_shared<Acceptor>(core.get(), std::move(acceptor));
  impl_->acceptor->Start();
  const int threads = o.io_threads > 0 ? o.io_threads : internal::UsableCpus();
  for (int i = 0; i < threads; ++i) {
    impl_->threads.emplace_back([core] {
      // Work keeps the loop running while no operation is pending.
      auto work = asio::make_work_guard(core->io);
      core->io.run();
    });
  }
  impl_->started = true;
  if (core->tls != nullptr) {
    LogEvent("http_listening", {{"address", impl_->address},
                                {"tls", "on"},
                                {"certificate", internal::DescribeCertificate(o.tls.cert_file)},
                                {"io_threads", absl::StrCat(threads)},
                                {"max_connections", absl::StrCat(o.max_connections)}});
  } else {
    LogEvent("http_listening", {{"address", impl_->address},
                                {"tls", "off"},
                                {"io_threads", absl::StrCat(threads)},
                                {"max_connections", absl::StrCat(o.max_connections)}});
  }
  return absl::OkStatus();
}

int HttpServer::port() const { return impl_->port; }

std::string HttpServer::address() const { return impl_->address; }

size_t HttpServer::connections() const {
  return impl_->core != nullptr ? impl_->core->open.load() : 0;
}

size_t HttpServer::buffered_response_bytes() const {
  return impl_->core != nullptr ? impl_->core->buffered.load() : 0;
}

void HttpServer::Shutdown() {
  {
    internal::MutexLock lock(&impl_->mu);
    if (!impl_->started) return;
    if (impl_->shutting_down) {
      // Another caller does the work: wait for it.
      while (!impl_->shut_down) impl_->cv.Wait();
      return;
    }
    impl_->shutting_down = true;
  }
  const absl::Time start = absl::Now();
  Core& core = *impl_->core;
  core.stopping.store(true);
  impl_->acceptor->Stop();
  core.CloseConnections(/*everything=*/false);
  core.WaitForNoConnections(start + impl_->options.shutdown_grace);
  const size_t cut = core.open.load();
  core.CloseConnections(/*everything=*/true);
  core.WaitForNoConnections(absl::Now() + absl::Seconds(1));
  core.io.stop();
  for (std::thread& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  impl_->acceptor.reset();
  LogEvent("http_stopped",
           {{"address", impl_->address},
            {"cut_connections", absl::StrCat(cut)},
            {"took_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - start))}});
  internal::MutexLock lock(&impl_->mu);
  impl_->shut_down = true;
  impl_->cv.SignalAll();
}

void HttpServer::Wait() {
  internal::MutexLock lock(&impl_->mu);
  if (!impl_->started) return;
  while (!impl_->shut_down) impl_->cv.Wait();
}

}  // namespace filemesh
