#include "filemesh/http_server.hpp"

#include <httplib.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl_compat.h"
#include "filemesh/log.hpp"
#include "percent_decode.h"
#include "rest/problem.h"

namespace filemesh {
namespace {

using internal::AbslView;

// A connection's socket as httplib reads and writes it. Reads are buffered
// (httplib reads the request line a byte at a time). Writes are buffered too
// and go out in one send() when the response is complete (Flush), or when
// the buffer fills, or before the next read: a response is one segment, not
// a head and a body, and costs one system call. The socket stays blocking;
// each call first tries without waiting and polls, within the timeout, only
// when the kernel has nothing to read or no room to write.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int fd, int read_timeout_ms, int write_timeout_ms)
      : fd_(fd), read_timeout_ms_(read_timeout_ms), write_timeout_ms_(write_timeout_ms) {}

  bool is_readable() const override { return begin_ < end_ || Poll(POLLIN, read_timeout_ms_); }
  bool is_writable() const override {
    return out_.size() < kMaxBufferedOutput || Poll(POLLOUT, write_timeout_ms_);
  }

  ssize_t read(char* ptr, size_t size) override {
    if (begin_ == end_) {
      // Whatever was written so far is what the peer may be waiting for
      // (an interim "100 Continue", say) before it sends more.
      if (!Flush()) return -1;
      if (size >= buffer_.size()) return Recv(ptr, size);
      const ssize_t n = Recv(buffer_.data(), buffer_.size());
      if (n <= 0) return n;
      begin_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const size_t n = std::min(size, end_ - begin_);
    std::memcpy(ptr, buffer_.data() + begin_, n);
    begin_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (size >= kMaxBufferedOutput) {
      // A large body goes out from where it is, after what came before it.
      if (!Flush() || !SendAll(ptr, size)) return -1;
      return static_cast<ssize_t>(size);
    }
    out_.append(ptr, size);
    if (out_.size() >= kMaxBufferedOutput && !Flush()) return -1;
    return static_cast<ssize_t>(size);
  }

  // Sends everything written so far; false when the peer is gone or does
  // not take the bytes within the write timeout.
  bool Flush() {
    const bool sent = SendAll(out_.data(), out_.size());
    out_.clear();
    return sent;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    remote_.Get(fd_, ::getpeername, &ip, &port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    local_.Get(fd_, ::getsockname, &ip, &port);
  }
  socket_t socket() const override { return fd_; }

  // A (pipelined) request is already buffered.
  bool has_buffered_bytes() const { return begin_ < end_; }

 private:
  // Output beyond this is sent before more is buffered.
  static constexpr size_t kMaxBufferedOutput = size_t{64} * 1024;

  // One end of the connection, looked up once: httplib asks on every request.
  class Endpoint {
   public:
    using Lookup = int (*)(int, sockaddr*, socklen_t*);
    void Get(int fd, Lookup lookup, std::string* ip, int* port) {
      if (!known_) {
        sockaddr_storage addr{};
        socklen_t len = sizeof(addr);
        char host[NI_MAXHOST];
        char service[NI_MAXSERV];
        if (lookup(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
            ::getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof(host),
                          service, sizeof(service), NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
          ip_ = host;
          port_ = std::atoi(service);
        }
        known_ = true;
      }
      *ip = ip_;
      *port = port_;
    }

   private:
    bool known_ = false;
    std::string ip_;
    int port_ = 0;
  };

  // Sends `size` bytes, waiting (up to the write timeout each time) while
  // the socket's buffer is full.
  bool SendAll(const char* data, size_t size) const {
    size_t sent = 0;
    while (sent < size) {
      const ssize_t n = ::send(fd_, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      const bool again = n < 0 && (errno == EINTR || ((errno == EAGAIN || errno == EWOULDBLOCK) &&
                                                      Poll(POLLOUT, write_timeout_ms_)));
      if (!again) return false;
    }
    return true;
  }

  bool Poll(short events, int timeout_ms) const {
    pollfd fd{fd_, events, 0};
    int ready;
    do {
      ready = ::poll(&fd, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    return ready > 0;
  }

  // Reads what is there, waiting up to the read timeout when nothing is.
  ssize_t Recv(char* ptr, size_t size) {
    while (true) {
      const ssize_t n = ::recv(fd_, ptr, size, MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if ((errno != EAGAIN && errno != EWOULDBLOCK) || !Poll(POLLIN, read_timeout_ms_)) return -1;
    }
  }

  const int fd_;
  const int read_timeout_ms_;
  const int write_timeout_ms_;
  std::array<char, 4096> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  std::string out_;
  mutable Endpoint remote_;
  mutable Endpoint local_;
};

int Milliseconds(absl::Duration d) {
  return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 1, 1 << 30));
}

// httplib::Server with its connection loop replaced. httplib waits for a
// connection's next request by polling every 10 ms until the keep-alive
// timeout, and nothing can cut that wait short, so an idle keep-alive
// connection would hold up a shutdown for the whole timeout. Here the wait is
// one poll() on the socket and on an eventfd that Shutdown makes readable.
// Requests themselves are still parsed, routed and answered by httplib
// (process_request). The listening socket can also be closed before the
// accept loop runs (httplib's stop() does nothing until then).
class Listener : public httplib::Server {
 public:
  Listener() : stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~Listener() override {
    if (stop_fd_ >= 0) ::close(stop_fd_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  bool valid() const { return stop_fd_ >= 0; }
  int listening_socket() const { return svr_sock_; }

  void set_connection_options(const HttpServerOptions& options) {
    read_timeout_ms_ = Milliseconds(options.read_timeout);
    write_timeout_ms_ = Milliseconds(options.write_timeout);
    keep_alive_timeout_ms_ = Milliseconds(options.keep_alive_timeout);
    keep_alive_max_requests_ = options.keep_alive_max_requests;
  }

  // Makes the accept loop end (or never start) and every connection close
  // once the request it is handling, if any, is answered.
  void Stop() {
    stopping_.store(true);
    if (stop_fd_ >= 0) {
      const uint64_t one = 1;
      (void)!::write(stop_fd_, &one, sizeof(one));  // stays readable for every poller
    }
    const socket_t sock = svr_sock_.exchange(INVALID_SOCKET);
    if (sock != INVALID_SOCKET) {
      ::shutdown(sock, SHUT_RDWR);
      ::close(sock);
    }
  }

 private:
  // Overrides httplib's (private virtual) per-connection loop; runs on a
  // thread of the task queue.
  bool process_and_close_socket(socket_t sock) override {
    // A response larger than the output buffer goes out in several sends:
    // without this the last one would wait for the client's delayed ACK.
    const int yes = 1;
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    ConnectionStream stream(sock, read_timeout_ms_, write_timeout_ms_);
    bool ok = false;
    for (int left = keep_alive_max_requests_; left > 0 && NextRequestArrives(stream); --left) {
      bool client_closes = false;
      ok = process_request(stream, /*close_connection=*/left == 1 || stopping_.load(),
                           client_closes, nullptr);
      ok = stream.Flush() && ok;
      if (!ok || client_closes) break;
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  // Waits for the next request's first bytes; false on the keep-alive
  // timeout, a closed connection or Stop().
  bool NextRequestArrives(const ConnectionStream& stream) const {
    if (stopping_.load()) return false;
    if (stream.has_buffered_bytes()) return true;
    pollfd fds[2] = {{stream.socket(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int ready;
    do {
      ready = ::poll(fds, 2, keep_alive_timeout_ms_);
    } while (ready < 0 && errno == EINTR);
    return ready > 0 && fds[1].revents == 0 && fds[0].revents != 0;
  }

  const int stop_fd_;
  std::atomic<bool> stopping_{false};
  int read_timeout_ms_ = 5000;
  int write_timeout_ms_ = 5000;
  int keep_alive_timeout_ms_ = 5000;
  int keep_alive_max_requests_ = 100;
};

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

// httplib's view of the peer, and the header fields it adds itself.
bool IsPseudoHeader(const std::string& name) {
  return name == "REMOTE_ADDR" || name == "REMOTE_PORT" || name == "LOCAL_ADDR" ||
         name == "LOCAL_PORT";
}

absl::Status ToHttpRequest(const httplib::Request& in, HttpRequest* out) {
  out->method = in.method;
  out->remote_address = in.remote_addr.find(':') == std::string::npos
                            ? absl::StrCat(in.remote_addr, ":", in.remote_port)
                            : absl::StrCat("[", in.remote_addr, "]:", in.remote_port);
  out->headers.reserve(in.headers.size());
  for (const auto& [name, value] : in.headers) {
    if (IsPseudoHeader(name)) continue;
    out->headers.emplace_back(absl::AsciiStrToLower(name), value);
  }
  return ParseTarget(in.target, out);
}

void ToHttplibResponse(const httplib::Request& request, HttpResponse in, httplib::Response* out) {
  out->status = in.status;
  for (auto& [name, value] : in.headers) out->set_header(name, value);
  if (in.body.empty() && in.content_type.empty()) return;
  std::string type = in.content_type.empty() ? "application/octet-stream" : in.content_type;
  if (request.ranges.empty()) {
    // What set_content does, without copying the body.
    out->body = std::move(in.body);
    out->set_header("Content-Type", type);
    return;
  }
  // httplib cuts a body to a request's Range and still sends the handler's
  // status (a 200 with part of a JSON document). A chunked body is the one
  // it leaves whole.
  auto body = std::make_shared<std::string>(std::move(in.body));
  out->set_chunked_content_provider(type, [body](size_t offset, httplib::DataSink& sink) {
    if (offset < body->size() && !sink.write(body->data() + offset, body->size() - offset)) {
      return false;
    }
    sink.done();
    return true;
  });
}

void WriteProblem(const httplib::Request& request, int http_status, const absl::Status& status,
                  httplib::Response* out) {
  ToHttplibResponse(request, internal::ProblemWithHttpStatus(http_status, status, ""), out);
}

// Requests whose body httplib reads before routing. Others are answered
// before it would read anything.
bool HasBodyToRead(const httplib::Request& request) {
  const bool reads_body = request.method == "POST" || request.method == "PUT" ||
                          request.method == "PATCH" || request.method == "DELETE";
  if (!reads_body) return false;
  if (request.has_header("Transfer-Encoding")) return true;
  return request.get_header_value<uint64_t>("Content-Length") > 0;
}

// The status for an error httplib answered on its own.
absl::Status ServerErrorStatus(int http_status, size_t max_body_bytes) {
  switch (http_status) {
    case 400:
      return absl::InvalidArgumentError("malformed HTTP request");
    case 413:
      return absl::InvalidArgumentError(
          absl::StrCat("the request body is larger than ", max_body_bytes, " bytes"));
    case 414:
      return absl::InvalidArgumentError("the request target is too long");
    case 416:
      return absl::InvalidArgumentError("malformed Range header");
    default:
      return absl::UnknownError("the HTTP request could not be served");
  }
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
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host->c_str(), nullptr, &hints, &found);
  if (rc != 0) return bad(absl::StrCat("does not resolve: ", ::gai_strerror(rc)));
  ::freeaddrinfo(found);
  return absl::OkStatus();
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  Listener server;
  std::thread thread;
  int port = 0;
  std::string address;

  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  bool shutting_down = false;
  bool shut_down = false;  // Shutdown() has finished
  bool stopped = false;    // the serving thread has ended

  // Runs the handler; never throws.
  void Serve(const httplib::Request& in, httplib::Response* out) const {
    HttpRequest request;
    if (absl::Status status = ToHttpRequest(in, &request); !status.ok()) {
      WriteProblem(in, 400, status, out);
      return;
    }
    try {
      ToHttplibResponse(in, handler(request), out);
    } catch (const std::exception& e) {
      LogEvent(LogLevel::kError, "http_handler_failed",
               {{"method", request.method}, {"path", request.path}, {"error", e.what()}});
      WriteProblem(in, 500, absl::InternalError("the request handler failed"), out);
    } catch (...) {
      LogEvent(LogLevel::kError, "http_handler_failed",
               {{"method", request.method}, {"path", request.path}, {"error", "unknown"}});
      WriteProblem(in, 500, absl::InternalError("the request handler failed"), out);
    }
  }

  void Configure() {
    const size_t threads = static_cast<size_t>(options.threads);
    server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    server.set_socket_options([](socket_t sock) {
      // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would
      // let a second server bind a port in use instead of failing.
      const int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server.set_connection_options(options);
    // Only advertised in the Keep-Alive header (and the socket timeouts
    // httplib sets on accepted connections): Listener enforces them.
    server.set_keep_alive_max_count(static_cast<size_t>(options.keep_alive_max_requests));
    server.set_keep_alive_timeout(static_cast<time_t>(std::max<int64_t>(
        1, absl::ToInt64Seconds(absl::Ceil(options.keep_alive_timeout, absl::Seconds(1))))));
    const timeval read = absl::ToTimeval(options.read_timeout);
    const timeval write = absl::ToTimeval(options.write_timeout);
    server.set_read_timeout(read.tv_sec, read.tv_usec);
    server.set_write_timeout(write.tv_sec, write.tv_usec);
    server.set_payload_max_length(options.max_body_bytes);

    // Bodiless requests (nearly all) are served here, before httplib's own
    // routing, which would match regular expressions.
    server.set_pre_routing_handler([this](const httplib::Request& in, httplib::Response& out) {
      if (HasBodyToRead(in)) return httplib::Server::HandlerResponse::Unhandled;
      Serve(in, &out);
      return httplib::Server::HandlerResponse::Handled;
    });
    // Called for every response of status 400 or more before it is written.
    server.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& in,
                                                                         httplib::Response& out) {
      if (!out.body.empty() || out.has_header("Content-Type")) {
        return httplib::Server::HandlerResponse::Unhandled;  // the handler's own answer
      }
      if (out.status == 404 && HasBodyToRead(in)) {
        // No route matched: a request with a body, read (within the limit)
        // and unrouted as no routes are registered. Serve it now.
        Serve(in, &out);
      } else {
        WriteProblem(in, out.status, ServerErrorStatus(out.status, options.max_body_bytes), &out);
      }
      return httplib::Server::HandlerResponse::Handled;
    }));
  }
};

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

HttpServer::~HttpServer() { Shutdown(); }

absl::Status HttpServer::Start(HttpHandler handler) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->started) return absl::FailedPreconditionError("the HTTP server was already started");
  const HttpServerOptions& o = impl_->options;
  if (!handler) return absl::InvalidArgumentError("no HTTP handler");
  if (o.threads < 1) return absl::InvalidArgumentError("HTTP threads must be at least 1");
  if (o.keep_alive_max_requests < 1) {
    return absl::InvalidArgumentError("keep_alive_max_requests must be at least 1");
  }
  if (o.read_timeout <= absl::ZeroDuration() || o.write_timeout <= absl::ZeroDuration() ||
      o.keep_alive_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("HTTP timeouts must be positive");
  }
  std::string host;
  int port = 0;
  if (absl::Status status = SplitListenAddress(o.listen, &host, &port); !status.ok()) {
    return status;
  }
  if (!impl_->server.valid()) {
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  impl_->handler = std::move(handler);
  impl_->Configure();
  errno = 0;
  const int bound = port == 0 ? impl_->server.bind_to_any_port(host)
                              : (impl_->server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    const int error = errno;
    impl_->server.Stop();
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on \"", o.listen, "\"",
                                               error != 0 ? ": " : "",
                                               error != 0 ? std::strerror(error) : ""));
  }
  // httplib listens with a backlog of 5; a burst of connections (a load
  // generator opening dozens) would be refused or retried.
  ::listen(impl_->server.listening_socket(), SOMAXCONN);
  impl_->port = bound;
  impl_->address = absl::StrCat(o.listen.substr(0, o.listen.rfind(':')), ":", bound);
  impl_->started = true;
  impl_->thread = std::thread([impl = impl_.get()] {
    impl->server.listen_after_bind();
    {
      std::lock_guard<std::mutex> done(impl->mu);
      impl->stopped = true;
    }
    impl->cv.notify_all();
  });
  LogEvent("http_listening", {{"address", impl_->address}, {"threads", absl::StrCat(o.threads)}});
  return absl::OkStatus();
}

int HttpServer::port() const { return impl_->port; }

std::string HttpServer::address() const { return impl_->address; }

void HttpServer::Shutdown() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (!impl_->started) return;
  if (impl_->shutting_down) {
    // Another caller does the work: wait for it.
    impl_->cv.wait(lock, [this] { return impl_->shut_down; });
    return;
  }
  impl_->shutting_down = true;
  lock.unlock();
  const absl::Time start = absl::Now();
  impl_->server.Stop();
  // The serving thread joins the connection threads before it ends.
  impl_->thread.join();
  LogEvent("http_stopped",
           {{"address", impl_->address},
            {"took_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - start))}});
  lock.lock();
  impl_->shut_down = true;
  impl_->cv.notify_all();
}

void HttpServer::Wait() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (!impl_->started) return;
  impl_->cv.wait(lock, [this] { return impl_->stopped; });
}

}  // namespace filemesh
