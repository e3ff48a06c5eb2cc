#include "filemesh/rpc/service_host.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "base/absl_compat.h"
#include "base/worker_pool.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/service/log.hpp"
#include "rpc/amqp_server.h"
#include "rpc/grpc_server.h"
#include "rpc/handler_registry.h"
#include "rpc/message_limits.h"

namespace filemesh {

namespace {

// The largest part of a call's time kept back for its reply (see
// ServiceHostOptions::max_call_time).
constexpr absl::Duration kMaxReplyMargin = absl::Milliseconds(200);

}  // namespace

absl::Time internal::HandlerDeadline(absl::Time arrival, absl::Time caller_deadline,
                                     absl::Duration max_call_time) {
  absl::Time deadline = arrival + max_call_time;
  if (caller_deadline < deadline) {
    const absl::Duration left = caller_deadline - arrival;
    deadline =
        caller_deadline - std::max(absl::ZeroDuration(), std::min(left / 10, kMaxReplyMargin));
  }
  return deadline;
}

struct ServiceHost::Impl {
  ServiceHostOptions options;
  std::atomic<size_t> inflight{0};
  internal::HandlerRegistry registry;
  // Set by Start, under `mu`, before any call can use them; read without
  // the lock afterwards.
  std::unique_ptr<internal::WorkerPool> pool;
  std::unique_ptr<internal::GrpcServer> grpc;
  std::unique_ptr<internal::AmqpServer> amqp;
  internal::Mutex mu;
  bool started ABSL_GUARDED_BY(mu) = false;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
  internal::CondVar done_cv{&mu};
  bool done ABSL_GUARDED_BY(mu) = false;

  absl::Status CreateAmqpServer();
  void AbandonStart();
  void LogStarted() const;

  // Runs a handler on the pool; every path calls `reply` exactly once.
  void Dispatch(const internal::IncomingCall& call, std::string request, std::string_view transport,
                internal::ReplyCallback reply) {
    const std::string& method = call.method;
    absl::Time deadline = call.deadline;
    if (options.log_calls) reply = WithCallLog(call, transport, std::move(reply));
    const internal::RawHandler* handler = registry.Find(method);
    if (handler == nullptr) {
      reply(absl::UnimplementedError("unknown method " + method));
      return;
    }
    if (request.size() > options.max_request_bytes) {
      reply(internal::MessageTooLarge("request", request.size(), options.max_request_bytes,
                                      "max_request_bytes"));
      return;
    }
    if (inflight.fetch_add(1) >= options.max_inflight) {
      --inflight;
      reply(absl::ResourceExhaustedError(absl::StrCat(
          "the service has ", options.max_inflight, " calls in flight, its limit (max_inflight)")));
      return;
    }
    // From here every path answers through this: it enforces the response
    // size and gives the call's in-flight slot back.
    reply = [this, reply = std::move(reply)](absl::StatusOr<std::string> response) {
      if (response.ok() && response->size() > options.max_message_bytes) {
        response =
            internal::MessageTooLarge("response", response->size(), options.max_message_bytes);
      }
      --inflight;
      reply(std::move(response));
    };
    deadline = internal::HandlerDeadline(absl::Now(), deadline, options.max_call_time);
    auto task = [handler, request = std::move(request), deadline, reply]() {
      if (absl::Now() >= deadline) {
        reply(absl::DeadlineExceededError("the call's deadline passed before it was served"));
        return;
      }
      reply((*handler)(request, deadline));
    };
    if (!pool->Submit(std::move(task))) {
      reply(absl::ResourceExhaustedError("the service is overloaded or shutting down"));
    }
  }

  // `reply`, logging the call's outcome and how long it took from dispatch.
  // The line is written before the reply goes out, so a client that got its
  // answer finds the call in the log.
  static internal::ReplyCallback WithCallLog(const internal::IncomingCall& call,
                                             std::string_view transport,
                                             internal::ReplyCallback reply) {
    return [method = call.method, peer = call.peer, transport, start = absl::Now(),
            reply = std::move(reply)](absl::StatusOr<std::string> response) {
      const absl::Duration took = absl::Now() - start;
      LogEvent("call",
               {{"method", method},
                {"transport", transport},
                {"code", internal::StdView(absl::StatusCodeToString(response.status().code()))},
                {"duration_ms", absl::StrCat(absl::FDivDuration(took, absl::Milliseconds(1)))},
                {"peer", peer.empty() ? "-" : std::string_view(peer)}});
      reply(std::move(response));
    };
  }

  internal::Dispatcher MakeDispatcher(std::string_view transport) {
    return [this, transport](const internal::IncomingCall& call, std::string request,
                             internal::ReplyCallback reply) {
      Dispatch(call, std::move(request), transport, std::move(reply));
    };
  }
};

ServiceHost::ServiceHost(ServiceHostOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

ServiceHost::~ServiceHost() { Shutdown(absl::Seconds(1)); }

void ServiceHost::RegisterRaw(const std::string& method, RawMethodHandler handler) {
  impl_->registry.Add(method, std::move(handler));
}

void ServiceHost::AddFileLister(const FileListerInterface& service) {
  RegisterRaw(kListMethod, FileListerHandler(service));
}

void ServiceHost::AddFileSearcher(const FileSearcherInterface& service) {
  RegisterRaw(kSearchMethod, FileSearcherHandler(service));
}

namespace {

// What Start refuses before it touches the network.
absl::Status CheckHostOptions(const ServiceHostOptions& o) {
  if (o.grpc_listen.empty() && o.amqp.url.empty()) {
    return absl::InvalidArgumentError("neither grpc_listen nor amqp.url is set");
  }
  if (o.max_inflight == 0) return absl::InvalidArgumentError("max_inflight must be at least 1");
  if (o.max_call_time <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_call_time must be positive");
  }
  if (o.grpc_max_connection_age < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError("grpc_max_connection_age must be 100ms or more");
  }
  if (!o.amqp.url.empty() && (o.amqp_prefetch <= 0 || o.amqp_prefetch > 65535)) {
    return absl::InvalidArgumentError("amqp_prefetch must be between 1 and 65535");
  }
  if (o.max_request_bytes == 0 || o.max_request_bytes > size_t{INT32_MAX}) {
    return absl::InvalidArgumentError("max_request_bytes must be between 1 and 2^31 - 1");
  }
  if (o.grpc_max_concurrent_streams < 1) {
    return absl::InvalidArgumentError("grpc_max_concurrent_streams must be at least 1");
  }
  if (o.grpc_memory_quota_bytes < (size_t{1} << 20)) {
    return absl::InvalidArgumentError("grpc_memory_quota_bytes must be at least 1 MiB");
  }
  return internal::CheckMaxMessageBytes(o.max_message_bytes);
}

}  // namespace

// Makes the AMQP server (not yet connected): its options are checked without
// touching the network, so a bad URL fails Start before a gRPC port is bound.
absl::Status ServiceHost::Impl::CreateAmqpServer() {
  internal::AmqpServerOptions amqp_options;
  amqp_options.amqp = options.amqp;
  amqp_options.prefetch = static_cast<uint16_t>(options.amqp_prefetch);
  amqp_options.reconnect_backoff_min = options.reconnect_backoff_min;
  amqp_options.reconnect_backoff_max = options.reconnect_backoff_max;
  amqp_options.services = registry.ServiceNames();
  amqp_options.max_request_bytes = options.max_request_bytes;
  amqp_options.dispatch = MakeDispatcher("amqp");
  absl::StatusOr<std::unique_ptr<internal::AmqpServer>> server =
      internal::AmqpServer::Create(amqp_options);
  if (!server.ok()) return server.status();
  amqp = *std::move(server);
  return absl::OkStatus();
}

// Undoes a Start that failed halfway.
void ServiceHost::Impl::AbandonStart() {
  if (grpc) grpc->Shutdown(absl::ZeroDuration());
  grpc.reset();
  amqp.reset();
  pool.reset();
}

void ServiceHost::Impl::LogStarted() const {
  std::vector<std::string> queues;
  if (amqp) {
    for (const std::string& service : registry.ServiceNames()) {
      queues.push_back(options.amqp.queue_prefix + service);
    }
  }
  LogEvent("service_host_started", {{"grpc", grpc ? grpc->address() : ""},
                                    {"amqp_url", RedactUrl(options.amqp.url)},
                                    {"queues", absl::StrJoin(queues, ",")},
                                    {"threads", absl::StrCat(pool->threads())}});
}

absl::Status ServiceHost::Start() {
  internal::MutexLock lock(&impl_->mu);
  if (impl_->started) return absl::FailedPreconditionError("the host was already started");
  const ServiceHostOptions& o = impl_->options;
  if (impl_->registry.ServiceNames().empty()) {
    return absl::InvalidArgumentError("no handler is registered");
  }
  if (absl::Status status = CheckHostOptions(o); !status.ok()) return status;
  impl_->pool = std::make_unique<internal::WorkerPool>(o.threads, o.max_inflight);
  absl::Status status = o.amqp.url.empty() ? absl::OkStatus() : impl_->CreateAmqpServer();
  if (status.ok() && !o.grpc_listen.empty()) {
    internal::GrpcServerOptions server;
    server.listen = o.grpc_listen;
    server.max_message_bytes = o.max_message_bytes;
    server.max_request_bytes = o.max_request_bytes;
    server.max_concurrent_streams = o.grpc_max_concurrent_streams;
    server.memory_quota_bytes = o.grpc_memory_quota_bytes;
    server.tls = o.grpc_tls;
    server.insecure = o.insecure;
    server.record_peer = o.log_calls;  // only the call log reads it
    server.max_connection_age = o.grpc_max_connection_age;
    server.connection_age_grace = o.max_call_time + absl::Seconds(1);
    absl::StatusOr<std::unique_ptr<internal::GrpcServer>> grpc =
        internal::GrpcServer::Start(server, impl_->registry, impl_->MakeDispatcher("grpc"));
    status = grpc.status();
    if (grpc.ok()) impl_->grpc = *std::move(grpc);
  }
  if (status.ok() && impl_->amqp) status = impl_->amqp->Start();
  if (!status.ok()) {
    impl_->AbandonStart();
    return status;
  }
  impl_->started = true;
  impl_->LogStarted();
  return absl::OkStatus();
}

int ServiceHost::grpc_port() const { return impl_->grpc ? impl_->grpc->port() : 0; }

bool ServiceHost::amqp_connected() const { return impl_->amqp && impl_->amqp->Connected(); }

void ServiceHost::Shutdown(absl::Duration grace) {
  {
    internal::MutexLock lock(&impl_->mu);
    if (!impl_->started || impl_->shut_down) return;
    impl_->shut_down = true;
  }
  // Stop the transports first (they wait for calls in flight), then the
  // handler threads, which finish whatever is still queued.
  LogEvent("service_host_stopping", {{"grace_ms", absl::StrCat(absl::ToInt64Milliseconds(grace))}});
  const absl::Time start = absl::Now();
  const absl::Time until = start + grace;
  if (impl_->amqp) impl_->amqp->Shutdown(grace);
  if (impl_->grpc) impl_->grpc->Shutdown(std::max(absl::ZeroDuration(), until - absl::Now()));
  if (impl_->pool) impl_->pool->Stop();
  LogEvent("service_host_stopped",
           {{"took_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - start))}});
  {
    internal::MutexLock lock(&impl_->mu);
    impl_->done = true;
  }
  impl_->done_cv.SignalAll();
}

void ServiceHost::Wait() {
  internal::MutexLock lock(&impl_->mu);
  if (!impl_->started) return;
  while (!impl_->done) impl_->done_cv.Wait();
}

}  // namespace filemesh
