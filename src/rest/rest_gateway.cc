#include "filemesh/rest/rest_gateway.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/absl_compat.h"
#include "base/blocking_wait.h"
#include "base/random_id.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/names.hpp"
#include "filemesh/service/address.hpp"
#include "filemesh/service/log.hpp"
#include "rest/api_keys.h"
#include "rest/assets.h"
#include "rest/audit_log.h"
#include "rest/gateway_metrics.h"
#include "rest/json.h"
#include "rest/operation_store.h"
#include "rest/problem.h"
#include "rest/query_params.h"

namespace filemesh {
namespace {

// RestGatewayOptions::allowed_hosts as Host headers are compared with them;
// empty when any host is allowed.
std::set<std::string> AllowedHosts(const std::vector<std::string>& hosts) {
  std::set<std::string> out;
  for (const std::string& host : hosts) {
    if (host == "*") return {};
    out.insert(HostWithoutPort(host));
  }
  return out;
}

using internal::JsonObjectWriter;
using internal::OperationKind;
using internal::QueryParams;

enum Route : int {
  kFiles,
  kSearch,
  kOperation,
  kHealthz,
  kReadyz,
  kMetrics,
  kOpenApi,
  kPage,
  kAsset,
  kOther,
  kRouteCount
};

constexpr std::string_view kOperationsPrefix = "/api/v1/operations/";
constexpr std::string_view kAssetsPrefix = "/ui/";

// Sent with every response. The page loads nothing but its own files and
// runs no inline script (a name on disk is only ever text); no other site
// may frame it.
constexpr std::pair<std::string_view, std::string_view> kSecurityHeaders[] = {
    {"Content-Security-Policy",
     "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
};

// The route label of metrics and logs: a template, so its values are few.
std::string_view RouteTemplate(Route route) {
  switch (route) {
    case kFiles:
      return "/api/v1/files";
    case kSearch:
      return "/api/v1/search";
    case kOperation:
      return "/api/v1/operations/{id}";
    case kHealthz:
      return "/healthz";
    case kReadyz:
      return "/readyz";
    case kMetrics:
      return "/metrics";
    case kOpenApi:
      return "/api/v1/openapi.yaml";
    case kPage:
      return "/";
    case kAsset:
      return "/ui/{asset}";
    default:
      return "other";
  }
}

Route Classify(std::string_view path, bool serve_ui) {
  for (const Route route : {kFiles, kSearch, kHealthz, kReadyz, kMetrics, kOpenApi}) {
    if (path == RouteTemplate(route)) return route;
  }
  if (absl::StartsWith(internal::AbslView(path), internal::AbslView(kOperationsPrefix))) {
    return kOperation;
  }
  if (serve_ui && path == RouteTemplate(kPage)) return kPage;
  if (serve_ui && absl::StartsWith(internal::AbslView(path), internal::AbslView(kAssetsPrefix)) &&
      internal::FindAsset(path) != nullptr) {
    return kAsset;
  }
  return kOther;
}

// A file compiled in (rest/assets.h), which must exist: Classify found it.
HttpResponse AssetResponse(std::string_view route) {
  const internal::EmbeddedAsset* asset = internal::FindAsset(route);
  HttpResponse response;
  if (asset == nullptr) return ProblemResponse(absl::InternalError("asset missing"), route);
  response.content_type = std::string(internal::AssetContentType(route));
  response.body = std::string(asset->bytes);
  // Compiled into this binary: a client revalidates, so an upgraded gateway
  // is never shown with an old page.
  response.headers.emplace_back("Cache-Control", "no-cache");
  return response;
}

// 1 to 128 characters of [A-Za-z0-9._:-].
bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// An id RandomHexId could have made: 32 lowercase hex digits.
bool IsOperationId(std::string_view id) {
  if (id.size() != 32) return false;
  for (const char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

HttpResponse JsonResponse(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "application/json";
  response.body = std::move(body);
  return response;
}

std::string Millis(std::chrono::steady_clock::duration elapsed) {
  const int64_t micros = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  return absl::StrCat(micros / 1000, ".", absl::Dec(micros % 1000, absl::kZeroPad3));
}

// What one request turned into, for metrics and the access log.
struct Exchange {
  Route route = kOther;
  std::string request_id;
  TransportKind served_by = TransportKind::kNone;
  // The caller's key (its name; "" when the gateway has no keys) and the
  // scope it may read ("" is the whole tree).
  std::string key_name;
  std::string scope;
  // For the audit line: the path and pattern the request asked about.
  std::string asked_path;
  std::string asked_pattern;
};

// The problem a client gets for a failed backend call. A service's own
// answer (a missing directory, a bad pattern, a limit) is the client's to act
// on and goes out as it is. The failures of the path to it (unreachable,
// timed out, broken) carry transport internals (peer addresses, broker
// users and hosts, gRPC core text): the client gets a sentence it can act
// on and the request id, the log gets the whole text.
//
// PublicStatus gives what the client sees (`request_id` names the request
// whose log line has the cause); BackendProblem logs the cause and answers.
absl::Status PublicStatus(const absl::Status& status, OperationKind kind,
                          std::string_view request_id) {
  const char* service = kind == OperationKind::kList ? "list" : "search";
  std::string said;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      said = absl::StrCat("the ", service, " service cannot be reached now; try again shortly");
      break;
    case absl::StatusCode::kDeadlineExceeded:
      said = absl::StrCat("the ", service, " service did not answer in time");
      break;
    case absl::StatusCode::kAborted:
      said = absl::StrCat("the ", service,
                          " service gave the request up after it failed on repeated tries");
      break;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kCancelled:
      said = absl::StrCat("the ", service, " service failed to answer");
      break;
    default:
      return status;
  }
  return absl::Status(status.code(), absl::StrCat(said, " (", internal::AbslView(request_id),
                                                  "; the gateway's log has the cause)"));
}

HttpResponse BackendProblem(const absl::Status& status, OperationKind kind, const std::string& path,
                            const Exchange& exchange) {
  absl::Status shown = PublicStatus(status, kind, absl::StrCat("request ", exchange.request_id));
  if (shown != status) {
    LogEvent(LogLevel::kWarning, "backend_failed",
             {{"request_id", exchange.request_id},
              {"backend", kind == OperationKind::kList ? "list" : "search"},
              {"code", internal::StdView(absl::StatusCodeToString(status.code()))},
              {"error", internal::StdView(status.message())}});
  }
  return ProblemResponse(shown, path);
}

std::string_view OperationKindName(int kind) {
  return kind == static_cast<int>(OperationKind::kSearch) ? "search" : "list";
}

// RFC 3339 in UTC, as protobuf's JSON mapping writes a Timestamp.
std::string Rfc3339(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", time, absl::UTCTimeZone());
}

// An operation as AIP-151 has it (google.longrunning.Operation in
// protobuf's JSON mapping, snake_case as the rest of the API): `name`,
// `done`, `metadata` (kind, served_by, create_time, update_time) and, once
// done, `error` (google.rpc.Status: code, message, and the code's name as
// `status`) or `response` (`response_json`, the reply as JSON). Also `operation`
// (its URL) and `served_by` at the top, as 1.x clients read them.
std::string OperationJson(const internal::StoredOperation& op, std::string_view url,
                          const absl::Status& error, std::string_view response_json) {
  const std::string_view served_by = TransportKindName(static_cast<TransportKind>(op.served_by));
  JsonObjectWriter json;
  json.String("name", absl::StrCat("operations/", op.id))
      .String("operation", url)
      .Bool("done", op.done)
      .Raw("metadata", JsonObjectWriter()
                           .String("kind", OperationKindName(op.kind))
                           .String("served_by", served_by)
                           .String("create_time", Rfc3339(op.create_time))
                           .String("update_time", Rfc3339(op.update_time))
                           .Finish())
      .String("served_by", served_by);
  if (op.done && !error.ok()) {
    json.Raw("error",
             JsonObjectWriter()
                 .Int("code", static_cast<int>(error.code()))
                 .String("status", internal::StdView(absl::StatusCodeToString(error.code())))
                 .String("message", internal::StdView(error.message()))
                 .Finish());
  } else if (op.done) {
    json.Raw("response", response_json);
  }
  return json.Finish();
}

// What the /api/ routes answer when the gateway could not open what it
// needs (RestGateway::status() says which).
absl::Status MisconfiguredStatus() {
  return absl::UnavailableError(
      "the gateway cannot serve its API: its API keys, audit log or operations database could "
      "not be opened (its log says why)");
}

// Where a route's response goes: once, from any thread.
using Reply = std::function<void(HttpResponse)>;

}  // namespace

struct RestGateway::Impl {
  Impl(RestGatewayOptions opts, std::shared_ptr<const AsyncFileListerInterface> list_client,
       std::shared_ptr<const AsyncFileSearcherInterface> search_client);

  ~Impl();

  void Dispatch(const HttpRequest& request, const std::shared_ptr<Exchange>& exchange,
                const Reply& reply);
  // The answer to every request that needs no backend call; nullopt for the
  // two that do (files and search, checked for method and key already).
  std::optional<HttpResponse> AnswerNow(const HttpRequest& request, Exchange* exchange);
  void List(const HttpRequest& request, const std::shared_ptr<Exchange>& exchange,
            const Reply& reply);
  void Search(const HttpRequest& request, const std::shared_ptr<Exchange>& exchange,
              const Reply& reply);
  HttpResponse GetOperation(const HttpRequest& request, Exchange* exchange);
  // The late-reply listener of the backends' channels: writes the outcome of
  // a queued call to the operation store (true: stored, or no operation
  // waits for it; false: the store failed, the channel keeps the reply).
  bool OnLateReply(const std::string& call_id, const absl::StatusOr<std::string>& response);
  // What the backend's channel says of queued call `op` (its owner's only):
  // its reply, or that it is gone, written to the store. Returns the
  // operation as stored then (as known here, when the store failed).
  internal::StoredOperation AskChannel(internal::StoredOperation op);
  size_t OperationCount() const;
  HttpResponse Readiness(bool* ready) const;
  template <typename Response>
  HttpResponse Answer(const absl::StatusOr<Response>& result, const CallInfo& info,
                      OperationKind kind, const std::string& path, Exchange* exchange);
  // Backend calls in flight, waited for by the destructor: their callbacks
  // use this object.
  void CallStarted();
  void CallEnded();
  // Finds the caller's key (its name and scope into `exchange`); false with
  // `why` when there is none or it is not one of the keys.
  bool Authorized(const HttpRequest& request, Exchange* exchange, std::string* why) const;
  // The path a request of a scoped key asks about ("" becomes the scope), or
  // a 403 when it is outside the scope.
  std::optional<HttpResponse> ScopePath(const HttpRequest& request, Exchange* exchange,
                                        std::string* path) const;
  // Whether the request's Host is one options.allowed_hosts names.
  bool HostAllowed(const HttpRequest& request) const;

  const RestGatewayOptions options;
  // The keys (null when the API is open) and why they could not be read.
  std::unique_ptr<internal::ApiKeySource> keys;
  absl::Status status;
  // Null without options.audit_log.
  std::unique_ptr<internal::AuditLog> audit;
  // options.allowed_hosts as HostWithoutPort gives them; empty: any host.
  const std::set<std::string> allowed_hosts;
  const std::shared_ptr<const AsyncFileListerInterface> lister;
  const std::shared_ptr<const AsyncFileSearcherInterface> searcher;
  // What the channels' late-reply listeners reach: this object until its
  // destructor begins, then nothing.
  struct ListenerTarget {
    internal::Mutex mu;
    Impl* impl ABSL_GUARDED_BY(mu) = nullptr;
  };
  const std::shared_ptr<ListenerTarget> listener = std::make_shared<ListenerTarget>();
  // This gateway in the operation store (StoredOperation::owner).
  const std::string instance = internal::RandomHexId();
  // Null when it could not be opened (`status` says why).
  std::unique_ptr<internal::OperationStore> operations;

  const std::shared_ptr<prometheus::Registry> registry;
  internal::GatewayMetrics metrics;
  const internal::BackendCollector backend_metrics;

  internal::Mutex calls_mu;
  internal::CondVar calls_cv{&calls_mu};
  size_t calls_in_flight ABSL_GUARDED_BY(calls_mu) = 0;
};

namespace {

std::vector<std::pair<std::string, const FailoverChannel*>> BackendChannels(
    const AsyncFileListerInterface* lister, const AsyncFileSearcherInterface* searcher) {
  std::vector<std::pair<std::string, const FailoverChannel*>> channels;
  if (lister != nullptr && lister->failover_channel() != nullptr) {
    channels.emplace_back("lister", lister->failover_channel());
  }
  if (searcher != nullptr && searcher->failover_channel() != nullptr) {
    channels.emplace_back("searcher", searcher->failover_channel());
  }
  return channels;
}

}  // namespace

RestGateway::Impl::~Impl() {
  {
    // No late reply comes here from now on (the channels may outlive this
    // gateway, and serve the next one: their listener is left in place).
    internal::MutexLock lock(&listener->mu);
    listener->impl = nullptr;
  }
  internal::MutexLock lock(&calls_mu);
  while (calls_in_flight != 0) calls_cv.Wait();
}

void RestGateway::Impl::CallStarted() {
  internal::MutexLock lock(&calls_mu);
  ++calls_in_flight;
}

void RestGateway::Impl::CallEnded() {
  internal::MutexLock lock(&calls_mu);
  if (--calls_in_flight == 0) calls_cv.SignalAll();
}

namespace {

std::vector<std::string> RouteLabels() {
  std::vector<std::string> labels;
  labels.reserve(kRouteCount);
  for (int route = 0; route < kRouteCount; ++route) {
    labels.emplace_back(RouteTemplate(static_cast<Route>(route)));
  }
  return labels;
}

}  // namespace

// The channels and the operation store outlive the collector: this object
// owns the store and holds the backends that own the channels.
RestGateway::Impl::Impl(RestGatewayOptions opts,
                        std::shared_ptr<const AsyncFileListerInterface> list_client,
                        std::shared_ptr<const AsyncFileSearcherInterface> search_client)
    : options(std::move(opts)),
      allowed_hosts(AllowedHosts(options.allowed_hosts)),
      lister(std::move(list_client)),
      searcher(std::move(search_client)),
      registry(options.metrics_registry != nullptr ? options.metrics_registry
                                                   : std::make_shared<prometheus::Registry>()),
      metrics(*registry, RouteLabels()),
      backend_metrics(
          BackendChannels(lister.get(), searcher.get()), [this] { return OperationCount(); },
          [this] { return operations != nullptr ? operations->evicted() : 0; }) {
  if (!options.api_key.empty() || !options.api_keys_file.empty()) {
    absl::StatusOr<std::unique_ptr<internal::ApiKeySource>> made =
        internal::ApiKeySource::Create(options.api_keys_file, options.api_key);
    if (made.ok()) {
      keys = *std::move(made);
    } else {
      status = made.status();
    }
  }
  if (status.ok() && !options.audit_log.empty()) {
    absl::StatusOr<std::unique_ptr<internal::AuditLog>> opened =
        internal::AuditLog::Open(options.audit_log);
    if (opened.ok()) {
      audit = *std::move(opened);
    } else {
      status = opened.status();
    }
  }
  if (status.ok()) {
    internal::OperationLimits limits;
    limits.capacity = std::max<size_t>(options.operation_capacity, 1);
    limits.max_bytes = std::max<size_t>(options.operation_max_bytes, 1);
    limits.ttl = options.operation_ttl;
    absl::StatusOr<std::unique_ptr<internal::OperationStore>> store =
        internal::OpenOperationStore(options.operations_db, limits);
    if (store.ok()) {
      operations = *std::move(store);
      {
        internal::MutexLock lock(&listener->mu);
        listener->impl = this;
      }
      // Call ids are unique across channels (random; in-memory ones per
      // process), and a reply from the orphan queue may come to either
      // backend's channel: the store finds the call by its id alone.
      for (const auto& [name, channel] : BackendChannels(lister.get(), searcher.get())) {
        channel->SetLateReplyListener(
            [target = listener](const std::string& call_id,
                                const absl::StatusOr<std::string>& response) {
              internal::MutexLock lock(&target->mu);
              if (target->impl == nullptr) return false;  // gone: left for TakeLateReply
              return target->impl->OnLateReply(call_id, response);
            });
      }
    } else {
      status = store.status();
    }
  }
  if (!status.ok()) {
    LogEvent(LogLevel::kError, "gateway_misconfigured",
             {{"error", internal::StdView(status.message())}});
  }
}

bool RestGateway::Impl::HostAllowed(const HttpRequest& request) const {
  if (allowed_hosts.empty()) return true;
  const std::string* host = request.Header("host");
  if (host == nullptr) return true;
  return allowed_hosts.count(HostWithoutPort(*host)) != 0;
}

bool RestGateway::Impl::Authorized(const HttpRequest& request, Exchange* exchange,
                                   std::string* why) const {
  const std::string* header = request.Header("authorization");
  if (header == nullptr) {
    *why = "this route needs an \"Authorization: Bearer <key>\" header";
    return false;
  }
  constexpr std::string_view kScheme = "bearer ";
  const std::string_view value(*header);
  if (value.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(internal::AbslView(value.substr(0, kScheme.size())),
                              internal::AbslView(kScheme))) {
    *why = "the Authorization header must use the Bearer scheme";
    return false;
  }
  const std::shared_ptr<const internal::ApiKeys> current = keys->Current();
  const internal::ApiKey* key = current->Find(value.substr(kScheme.size()));
  if (key == nullptr) {
    *why = "the bearer key is not valid";
    return false;
  }
  exchange->key_name = key->name;
  exchange->scope = key->scope;
  return true;
}

std::optional<HttpResponse> RestGateway::Impl::ScopePath(const HttpRequest& request,
                                                         Exchange* exchange,
                                                         std::string* path) const {
  if (exchange->scope.empty()) return std::nullopt;
  if (path->empty() || *path == ".") *path = exchange->scope;
  exchange->asked_path = *path;
  if (internal::WithinScope(*path, exchange->scope)) return std::nullopt;
  return ProblemResponse(absl::PermissionDeniedError(absl::StrCat(
                             "the key \"", exchange->key_name, "\" may read only beneath \"",
                             exchange->scope, "\", not ", internal::QuoteClientText(*path))),
                         request.path);
}

void RestGateway::Impl::Dispatch(const HttpRequest& request,
                                 const std::shared_ptr<Exchange>& exchange, const Reply& reply) {
  if (std::optional<HttpResponse> now = AnswerNow(request, exchange.get()); now.has_value()) {
    return reply(*std::move(now));
  }
  if (exchange->route == kFiles) return List(request, exchange, reply);
  Search(request, exchange, reply);
}

std::optional<HttpResponse> RestGateway::Impl::AnswerNow(const HttpRequest& request,
                                                         Exchange* exchange) {
  if (const std::string* given = request.Header("x-request-id"); given != nullptr) {
    if (!IsValidRequestId(*given)) {
      return ProblemResponse(
          absl::InvalidArgumentError("X-Request-Id must be 1 to 128 characters from A-Z, a-z, "
                                     "0-9, '.', '_', ':' and '-'"),
          request.path);
    }
  }
  if (!HostAllowed(request) && exchange->route != kHealthz) {
    return internal::ProblemWithHttpStatus(
        421,
        absl::PermissionDeniedError(
            absl::StrCat("this gateway does not answer for host ",
                         internal::QuoteClientText(HostWithoutPort(*request.Header("host"))),
                         " (see its --allowed_hosts)")),
        request.path);
  }
  const bool api = absl::StartsWith(internal::AbslView(request.path), "/api/");
  if (api && !status.ok()) return ProblemResponse(MisconfiguredStatus(), request.path);
  if (api && keys != nullptr) {
    std::string why;
    if (!Authorized(request, exchange, &why)) {
      HttpResponse response = ProblemResponse(absl::UnauthenticatedError(why), request.path);
      response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"filemesh\"");
      return response;
    }
  }
  if (exchange->route == kOther) {
    return ProblemResponse(
        absl::NotFoundError(absl::StrCat("no route ", internal::QuoteClientText(request.path))),
        request.path);
  }
  // HEAD is answered as GET; the HTTP server leaves the body out.
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse response = internal::ProblemWithHttpStatus(
        405,
        absl::UnimplementedError(absl::StrCat(internal::AbslView(RouteTemplate(exchange->route)),
                                              " only answers GET and HEAD, not ",
                                              internal::QuoteClientText(request.method))),
        request.path);
    response.headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }
  switch (exchange->route) {
    case kFiles:
    case kSearch:
      return std::nullopt;  // answered by the backend call's completion
    case kOperation:
      return GetOperation(request, exchange);
    default:
      break;
  }
  absl::StatusOr<QueryParams> params = QueryParams::Parse(request.query, {});
  if (!params.ok()) return ProblemResponse(params.status(), request.path);
  switch (exchange->route) {
    case kHealthz:
      return JsonResponse(200, JsonObjectWriter().String("status", "ok").Finish());
    case kReadyz: {
      bool ready = false;
      return Readiness(&ready);
    }
    case kMetrics: {
      HttpResponse response;
      response.content_type = "text/plain; version=0.0.4";
      response.body = internal::RenderMetrics(*registry, backend_metrics);
      return response;
    }
    case kOpenApi:
    case kPage:
    case kAsset:
      return AssetResponse(request.path);
    default:
      return ProblemResponse(absl::InternalError("unrouted request"), request.path);
  }
}

namespace {

absl::Status FirstError(std::initializer_list<absl::Status> statuses) {
  for (const absl::Status& status : statuses) {
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// Paths that are not UTF-8 travel exactly, in the raw_path bytes field.
template <typename Request>
void SetPath(const std::string& path, Request* request) {
  if (IsValidUtf8(path)) {
    request->set_path(path);
  } else {
    request->set_raw_path(path);
  }
}

}  // namespace

void RestGateway::Impl::List(const HttpRequest& request, const std::shared_ptr<Exchange>& exchange,
                             const Reply& reply) {
  absl::StatusOr<QueryParams> params = QueryParams::Parse(
      request.query, {"path", "page_size", "page_token", "sort", "order", "hidden"});
  if (!params.ok()) return reply(ProblemResponse(params.status(), request.path));
  std::string path;
  std::string page_token;
  std::optional<uint64_t> page_size;
  v1::SortField sort = v1::SORT_FIELD_NAME;
  bool descending = false;
  bool hidden = false;
  const absl::Status valid = FirstError({
      params->GetBytes("path", &path),
      params->GetUint("page_size", 1, 10000, &page_size),
      params->GetUtf8("page_token", &page_token),
      params->GetChoice<v1::SortField>("sort",
                                       {{"name", v1::SORT_FIELD_NAME},
                                        {"size", v1::SORT_FIELD_SIZE},
                                        {"modified", v1::SORT_FIELD_MODIFIED}},
                                       &sort),
      params->GetChoice<bool>("order", {{"asc", false}, {"desc", true}}, &descending),
      params->GetBool("hidden", &hidden),
  });
  if (!valid.ok()) return reply(ProblemResponse(valid, request.path));
  exchange->asked_path = path;
  if (std::optional<HttpResponse> refused = ScopePath(request, exchange.get(), &path)) {
    return reply(*std::move(refused));
  }
  if (lister == nullptr) {
    return reply(ProblemResponse(absl::UnavailableError("no lister configured"), request.path));
  }

  v1::ListRequest list;
  SetPath(path, &list);
  list.set_scope(exchange->scope);
  if (page_size.has_value()) list.set_page_size(static_cast<uint32_t>(*page_size));
  list.set_page_token(page_token);
  list.set_sort(sort);
  list.set_descending(descending);
  list.set_include_hidden(hidden);
  CallStarted();
  lister->ListAsync(list, absl::Now() + options.request_timeout,
                    [this, exchange, reply, path = request.path](
                        const absl::StatusOr<v1::ListResponse>& result, const CallInfo& info) {
                      reply(Answer(result, info, OperationKind::kList, path, exchange.get()));
                      CallEnded();
                    });
}

void RestGateway::Impl::Search(const HttpRequest& request,
                               const std::shared_ptr<Exchange>& exchange, const Reply& reply) {
  absl::StatusOr<QueryParams> params = QueryParams::Parse(
      request.query, {"q", "syntax", "path", "case_insensitive", "type", "max_depth", "max_results",
                      "hidden", "min_size", "max_size", "one_file_system"});
  if (!params.ok()) return reply(ProblemResponse(params.status(), request.path));
  std::string pattern;
  std::string path;
  v1::PatternSyntax syntax = v1::PATTERN_SYNTAX_GLOB;
  bool case_insensitive = false;
  v1::FileType type = v1::FILE_TYPE_UNSPECIFIED;
  std::optional<uint64_t> max_depth;
  std::optional<uint64_t> max_results;
  bool hidden = false;
  std::optional<uint64_t> min_size;
  std::optional<uint64_t> max_size;
  std::optional<bool> one_file_system;
  const absl::Status valid = FirstError({
      params->GetUtf8("q", &pattern),
      params->GetChoice<v1::PatternSyntax>("syntax",
                                           {{"glob", v1::PATTERN_SYNTAX_GLOB},
                                            {"substring", v1::PATTERN_SYNTAX_SUBSTRING},
                                            {"regex", v1::PATTERN_SYNTAX_REGEX}},
                                           &syntax),
      params->GetBytes("path", &path),
      params->GetBool("case_insensitive", &case_insensitive),
      params->GetChoice<v1::FileType>("type",
                                      {{"file", v1::FILE_TYPE_FILE},
                                       {"directory", v1::FILE_TYPE_DIRECTORY},
                                       {"symlink", v1::FILE_TYPE_SYMLINK},
                                       {"other", v1::FILE_TYPE_OTHER}},
                                      &type),
      params->GetUint("max_depth", 1, UINT32_MAX, &max_depth),
      params->GetUint("max_results", 1, 100000, &max_results),
      params->GetBool("hidden", &hidden),
      params->GetUint("min_size", 0, UINT64_MAX, &min_size),
      params->GetUint("max_size", 0, UINT64_MAX, &max_size),
      params->GetBool("one_file_system", &one_file_system),
  });
  if (!valid.ok()) return reply(ProblemResponse(valid, request.path));
  exchange->asked_path = path;
  exchange->asked_pattern = pattern;
  if (std::optional<HttpResponse> refused = ScopePath(request, exchange.get(), &path)) {
    return reply(*std::move(refused));
  }
  if (pattern.empty()) {
    return reply(ProblemResponse(
        absl::InvalidArgumentError("query parameter \"q\" (the pattern) is required and may not "
                                   "be empty"),
        request.path));
  }
  if (searcher == nullptr) {
    return reply(ProblemResponse(absl::UnavailableError("no searcher configured"), request.path));
  }

  v1::SearchRequest search;
  search.set_pattern(pattern);
  search.set_syntax(syntax);
  SetPath(path, &search);
  search.set_scope(exchange->scope);
  search.set_case_insensitive(case_insensitive);
  search.set_type(type);
  if (max_depth.has_value()) search.set_max_depth(static_cast<uint32_t>(*max_depth));
  if (max_results.has_value()) search.set_max_results(static_cast<uint32_t>(*max_results));
  search.set_include_hidden(hidden);
  if (min_size.has_value()) search.set_min_size(*min_size);
  if (max_size.has_value()) search.set_max_size(*max_size);
  if (one_file_system.has_value()) search.set_one_file_system(*one_file_system);
  CallStarted();
  searcher->SearchAsync(
      search, absl::Now() + options.request_timeout,
      [this, exchange, reply, path = request.path](const absl::StatusOr<v1::SearchResponse>& result,
                                                   const CallInfo& info) {
        reply(Answer(result, info, OperationKind::kSearch, path, exchange.get()));
        CallEnded();
      });
}

template <typename Response>
HttpResponse RestGateway::Impl::Answer(const absl::StatusOr<Response>& result, const CallInfo& info,
                                       OperationKind kind, const std::string& path,
                                       Exchange* exchange) {
  exchange->served_by = info.served_by;
  if (result.ok()) {
    absl::StatusOr<std::string> json = internal::MessageToJson(*result);
    if (!json.ok()) return ProblemResponse(json.status(), path);
    return JsonResponse(200, internal::AppendStringMember(*std::move(json), "served_by",
                                                          TransportKindName(info.served_by)));
  }
  if (info.queued) {
    internal::StoredOperation op;
    op.call_id = info.operation_id;
    op.kind = static_cast<int>(kind);
    op.served_by = static_cast<int>(info.served_by);
    op.path = exchange->asked_path;
    op.owner = instance;
    op.create_time = op.update_time = absl::Now();
    absl::StatusOr<std::string> id = operations->Add(op, op.create_time);
    if (!id.ok()) {
      LogEvent(LogLevel::kError, "operation_store_failed",
               {{"request_id", exchange->request_id},
                {"action", "add"},
                {"error", internal::StdView(id.status().message())}});
      return ProblemResponse(
          absl::UnavailableError(absl::StrCat(
              "the call is queued on the broker, but the gateway could not record its operation "
              "(request ",
              exchange->request_id, "; the gateway's log has the cause)")),
          path);
    }
    op.id = *id;
    const std::string location = absl::StrCat(internal::AbslView(kOperationsPrefix), op.id);
    HttpResponse response = JsonResponse(202, OperationJson(op, location, absl::OkStatus(), ""));
    response.headers.emplace_back("Location", location);
    return response;
  }
  return BackendProblem(result.status(), kind, path, *exchange);
}

namespace {

// A stored answer (serialized `Response`) as JSON; DataLoss when the bytes
// are no such message.
template <typename Response>
absl::StatusOr<std::string> StoredAnswerJson(const std::string& bytes) {
  Response response;
  if (!response.ParseFromString(bytes)) {
    return absl::DataLossError(
        absl::StrCat("the stored answer is not a ", Response::descriptor()->name()));
  }
  return internal::MessageToJson(response);
}

}  // namespace

HttpResponse RestGateway::Impl::GetOperation(const HttpRequest& request, Exchange* exchange) {
  absl::StatusOr<QueryParams> params = QueryParams::Parse(request.query, {});
  if (!params.ok()) return ProblemResponse(params.status(), request.path);
  const std::string_view id = std::string_view(request.path).substr(kOperationsPrefix.size());
  const auto store_failed = [&](const absl::Status& why) {
    LogEvent(LogLevel::kError, "operation_store_failed",
             {{"request_id", exchange->request_id},
              {"action", "find"},
              {"error", internal::StdView(why.message())}});
    return ProblemResponse(absl::UnavailableError(absl::StrCat(
                               "the gateway cannot read its operations now (request ",
                               exchange->request_id, "; the gateway's log has the cause)")),
                           request.path);
  };
  absl::StatusOr<std::optional<internal::StoredOperation>> found =
      IsOperationId(id) ? operations->Find(id, absl::Now())
                        : std::optional<internal::StoredOperation>();
  if (!found.ok()) return store_failed(found.status());
  if (!found->has_value()) {
    return ProblemResponse(
        absl::NotFoundError(
            absl::StrCat("no operation ", internal::QuoteClientText(id), ": unknown, or expired")),
        request.path);
  }
  internal::StoredOperation op = **std::move(found);

  // A scoped key reads only the operations of requests within its scope
  // (a key for projects/a those of projects/a/x, not those of projects/b or
  // of a key for the whole tree).
  if (!exchange->scope.empty() && !internal::WithinScope(op.path, exchange->scope)) {
    return ProblemResponse(absl::PermissionDeniedError(absl::StrCat(
                               "the key \"", exchange->key_name,
                               "\" may not read operations outside \"", exchange->scope, "\"")),
                           request.path);
  }
  exchange->served_by = static_cast<TransportKind>(op.served_by);
  // The gateway that queued the call may still hold its reply (when the
  // store failed as it came), or know that none will come.
  if (!op.done && op.owner == instance) {
    op = AskChannel(std::move(op));
  }

  const std::string location = absl::StrCat(internal::AbslView(kOperationsPrefix), op.id);
  const auto kind = static_cast<OperationKind>(op.kind);
  if (!op.done) return JsonResponse(200, OperationJson(op, location, absl::OkStatus(), ""));
  if (!op.error.ok()) {
    return JsonResponse(
        200, OperationJson(op, location,
                           PublicStatus(op.error, kind, absl::StrCat("operation ", op.id)), ""));
  }
  absl::StatusOr<std::string> json =
      kind == OperationKind::kList     ? StoredAnswerJson<v1::ListResponse>(op.response)
      : kind == OperationKind::kSearch ? StoredAnswerJson<v1::SearchResponse>(op.response)
                                       : absl::InternalError("unknown operation kind");
  if (!json.ok()) {
    op.error = json.status();
    return JsonResponse(200, OperationJson(op, location, json.status(), ""));
  }
  return JsonResponse(200, OperationJson(op, location, absl::OkStatus(), *json));
}

bool RestGateway::Impl::OnLateReply(const std::string& call_id,
                                    const absl::StatusOr<std::string>& response) {
  absl::StatusOr<bool> wrote = operations->Complete(
      call_id, response.status(), response.ok() ? *response : std::string(), absl::Now());
  if (!wrote.ok()) {
    LogEvent(LogLevel::kError, "operation_store_failed",
             {{"call_id", call_id},
              {"action", "complete"},
              {"error", internal::StdView(wrote.status().message())}});
    return false;  // the channel keeps it: a GET here asks for it again
  }
  if (*wrote && !response.ok()) {
    LogEvent(LogLevel::kWarning, "operation_failed",
             {{"call_id", call_id},
              {"code", internal::StdView(absl::StatusCodeToString(response.status().code()))},
              {"error", internal::StdView(response.status().message())}});
  }
  return true;
}

internal::StoredOperation RestGateway::Impl::AskChannel(internal::StoredOperation op) {
  LateReply::State state = LateReply::State::kUnknown;
  absl::Status outcome = absl::OkStatus();
  std::string bytes;
  const auto take = [&](auto operation) {
    state = operation.state;
    if (!operation.response.ok()) {
      outcome = operation.response.status();
    } else {
      bytes = operation.response->SerializeAsString();
    }
  };
  if (op.kind == static_cast<int>(OperationKind::kList) && lister != nullptr) {
    take(lister->TakeList(op.call_id));
  } else if (op.kind == static_cast<int>(OperationKind::kSearch) && searcher != nullptr) {
    take(searcher->TakeSearch(op.call_id));
  }
  if (state == LateReply::State::kPending) return op;
  if (state == LateReply::State::kUnknown) {
    // Neither came nor will: the request expired in its queue, or the
    // reply was dropped for room (late_reply_ttl, late_reply_capacity).
    // Unless the listener stored it meanwhile: Complete writes only once.
    outcome = absl::DeadlineExceededError(
        "no reply came while the queued request was worth serving (the gateway's "
        "--late_reply_ttl), or it was dropped for room");
    bytes.clear();
  }
  const absl::Time now = absl::Now();
  absl::StatusOr<bool> wrote = operations->Complete(op.call_id, outcome, bytes, now);
  absl::StatusOr<std::optional<internal::StoredOperation>> again =
      wrote.ok() ? operations->Find(op.id, now) : wrote.status();
  if (again.ok() && again->has_value()) return **std::move(again);
  if (!again.ok()) {
    // Taken from the channel, not stored: this answer is the last of it.
    LogEvent(LogLevel::kError, "operation_store_failed",
             {{"operation", op.id},
              {"action", "complete"},
              {"error", internal::StdView(again.status().message())}});
  }
  op.done = true;  // (or evicted meanwhile): answer what was found
  op.error = outcome;
  op.response = std::move(bytes);
  op.update_time = now;
  return op;
}

size_t RestGateway::Impl::OperationCount() const {
  if (operations == nullptr) return 0;
  absl::StatusOr<size_t> count = operations->Count();
  return count.ok() ? *count : 0;
}

HttpResponse RestGateway::Impl::Readiness(bool* ready) const {
  JsonObjectWriter backends;
  // The backends that cannot serve now (not configured, or no transport
  // can deliver), as a JSON array.
  std::string missing;
  bool any_serving = false;
  auto describe = [&](std::string_view name, const void* backend, const FailoverChannel* channel) {
    bool serving = true;
    if (backend == nullptr) {
      serving = false;
      backends.Raw(name, JsonObjectWriter().Bool("configured", false).Finish());
    } else if (channel == nullptr) {  // a backend of its own, not on a FailoverChannel
      backends.Raw(name, JsonObjectWriter().Bool("configured", true).Bool("ready", true).Finish());
    } else {
      const bool primary = channel->primary_available();
      const bool fallback = channel->fallback_available();
      serving = primary || fallback;
      backends.Raw(name, JsonObjectWriter()
                             .Bool("configured", true)
                             .Bool("ready", serving)
                             .Raw("grpc", JsonObjectWriter()
                                              .Bool("configured", channel->has_primary())
                                              .Bool("available", primary)
                                              .Finish())
                             .Raw("broker", JsonObjectWriter()
                                                .Bool("configured", channel->has_fallback())
                                                .Bool("connected", fallback)
                                                .Finish())
                             .String("breaker", BreakerStateName(channel->breaker_state()))
                             .Finish());
    }
    any_serving = any_serving || serving;
    if (!serving) {
      missing += missing.empty() ? "[" : ",";
      internal::AppendJsonString(name, &missing);
    }
  };
  describe("lister", lister.get(), lister != nullptr ? lister->failover_channel() : nullptr);
  describe("searcher", searcher.get(),
           searcher != nullptr ? searcher->failover_channel() : nullptr);
  missing = missing.empty() ? "[]" : missing + "]";
  // 503 only when nothing can be served: a gateway that can list but not
  // search still answers half the API ("degraded", and `missing` says what).
  *ready = any_serving;
  const std::string_view state = !any_serving      ? "unavailable"
                                 : missing == "[]" ? "ready"
                                                   : "degraded";
  return JsonResponse(any_serving ? 200 : 503, JsonObjectWriter()
                                                   .String("status", state)
                                                   .Raw("missing", missing)
                                                   .Raw("backends", backends.Finish())
                                                   .Finish());
}

RestGateway::RestGateway(RestGatewayOptions options,
                         std::shared_ptr<const AsyncFileListerInterface> lister,
                         std::shared_ptr<const AsyncFileSearcherInterface> searcher)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(lister), std::move(searcher))) {}

RestGateway::~RestGateway() = default;

void RestGateway::HandleAsync(const HttpRequest& request, HttpResponder respond) {
  const auto start = std::chrono::steady_clock::now();
  auto exchange = std::make_shared<Exchange>();
  exchange->route = Classify(request.path, impl_->options.serve_ui);
  const std::string* given_id = request.Header("x-request-id");
  exchange->request_id =
      given_id != nullptr && IsValidRequestId(*given_id) ? *given_id : internal::RandomHexId();
  Impl* impl = impl_.get();
  // Runs once, on whichever thread the response is ready.
  Reply reply = [impl, exchange, start, respond = std::move(respond), method = request.method,
                 path = request.path, remote = request.remote_address](HttpResponse response) {
    response.headers.emplace_back("X-Request-Id", exchange->request_id);
    for (const auto& [name, value] : kSecurityHeaders) {
      response.headers.emplace_back(std::string(name), std::string(value));
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    impl->metrics.CountRequest(exchange->route, exchange->served_by, response.status,
                               std::chrono::duration<double>(elapsed).count());
    if (impl->audit != nullptr && absl::StartsWith(internal::AbslView(path), "/api/")) {
      const std::string status = absl::StrCat(response.status);
      const std::string bytes = absl::StrCat(response.body.size());
      const std::string duration_ms = Millis(elapsed);
      const bool asked = exchange->route == kFiles || exchange->route == kSearch;
      impl->audit->Write({{"request_id", exchange->request_id},
                          {"key", exchange->key_name},
                          {"client", remote},
                          {"method", method},
                          {"route", RouteTemplate(exchange->route)},
                          {"path", asked ? exchange->asked_path : path},
                          {"pattern", exchange->asked_pattern},
                          {"status", status},
                          {"served_by", TransportKindName(exchange->served_by)},
                          {"bytes", bytes},
                          {"duration_ms", duration_ms}});
    }
    if (impl->options.access_log) {
      const std::string status = absl::StrCat(response.status);
      const std::string duration_ms = Millis(elapsed);
      LogEvent("http_request", {{"request_id", exchange->request_id},
                                {"method", method},
                                {"route", RouteTemplate(exchange->route)},
                                {"path", path},
                                {"status", status},
                                {"served_by", TransportKindName(exchange->served_by)},
                                {"duration_ms", duration_ms},
                                {"remote", remote}});
    }
    respond(std::move(response));
  };
  try {
    impl_->Dispatch(request, exchange, reply);
  } catch (const std::exception& e) {
    // Only before a backend call started: nothing after it throws.
    reply(ProblemResponse(absl::InternalError(absl::StrCat("the gateway failed: ", e.what())),
                          request.path));
  }
}

HttpResponse RestGateway::Handle(const HttpRequest& request) {
  internal::BlockingWait<HttpResponse> wait;
  HandleAsync(request, HttpResponder(wait.Callback()));
  return wait.Take();
}

bool RestGateway::Ready() const {
  bool ready = false;
  impl_->Readiness(&ready);
  return ready;
}

prometheus::Registry& RestGateway::metrics() { return *impl_->registry; }

absl::Status RestGateway::status() const { return impl_->status; }

}  // namespace filemesh
