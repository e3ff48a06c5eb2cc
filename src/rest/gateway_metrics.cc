#include "rest/gateway_metrics.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace filemesh::internal {
namespace {

// The statuses the gateway answers often enough to keep their counters at
// hand; a request with another status resolves its counter each time.
constexpr std::array<int, 14> kKnownStatuses = {200, 202, 400, 401, 403, 404, 405,
                                                409, 429, 499, 500, 501, 503, 504};
constexpr size_t kTransportKinds = 4;  // TransportKind's values

int StatusSlot(int status) {
  for (size_t i = 0; i < kKnownStatuses.size(); ++i) {
    if (kKnownStatuses[i] == status) return static_cast<int>(i);
  }
  return -1;
}

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

prometheus::ClientMetric Sample(std::vector<prometheus::ClientMetric::Label> labels,
                                prometheus::MetricType type, double value) {
  prometheus::ClientMetric sample;
  sample.label = std::move(labels);
  if (type == prometheus::MetricType::Counter) {
    sample.counter.value = value;
  } else {
    sample.gauge.value = value;
  }
  return sample;
}

struct ChannelCounter {
  const char* name;
  const char* help;
  uint64_t ChannelStats::*member;
};

constexpr ChannelCounter kChannelCounters[] = {
    {"filemesh_channel_calls_total", "Calls made on the backend's FailoverChannel.",
     &ChannelStats::calls},
    {"filemesh_channel_served_by_primary_total", "Calls the primary (gRPC) transport served.",
     &ChannelStats::served_by_primary},
    {"filemesh_channel_served_by_fallback_total",
     "Calls the fallback (AMQP) transport answered in time.", &ChannelStats::served_by_fallback},
    {"filemesh_channel_failovers_total", "Calls that tried the primary, then the fallback.",
     &ChannelStats::failovers},
    {"filemesh_channel_queued_total",
     "Calls that ended queued on the broker with no reply in time.", &ChannelStats::queued},
    {"filemesh_channel_breaker_opened_total", "Times the primary's circuit breaker opened.",
     &ChannelStats::breaker_opened},
    {"filemesh_channel_replies_refused_total",
     "Replies dropped because their sender was not a service user (forged or misdirected).",
     &ChannelStats::replies_refused},
    {"filemesh_channel_late_replies_dropped_total",
     "Late replies (answers of queued calls) dropped before their TTL to stay within the "
     "channel's bounds (late_reply_capacity, late_reply_max_bytes).",
     &ChannelStats::late_replies_dropped},
    {"filemesh_channel_outbox_refused_total",
     "AMQP calls refused at once because too many waited for the broker to take them "
     "(outbox_max_calls, outbox_max_bytes).",
     &ChannelStats::outbox_refused},
    {"filemesh_channel_resent_total",
     "AMQP calls sent again on a new broker connection because the one that carried them was "
     "lost before the broker confirmed them.",
     &ChannelStats::resent},
};

}  // namespace

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

BackendCollector::BackendCollector(
    std::vector<std::pair<std::string, const FailoverChannel*>> channels,
    std::function<size_t()> operations, std::function<uint64_t()> operations_evicted)
    : channels_(std::move(channels)),
      operations_(std::move(operations)),
      operations_evicted_(std::move(operations_evicted)) {}

std::vector<prometheus::MetricFamily> BackendCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<ChannelStats> stats;
  stats.reserve(channels_.size());
  for (const auto& [name, channel] : channels_) stats.push_back(channel->stats());

  std::vector<prometheus::MetricFamily> families;
  if (!channels_.empty()) {
    for (const ChannelCounter& counter : kChannelCounters) {
      prometheus::MetricFamily family = Family(counter.name, counter.help, MetricType::Counter);
      for (size_t i = 0; i < channels_.size(); ++i) {
        family.metric.push_back(Sample({{"backend", channels_[i].first}}, MetricType::Counter,
                                       static_cast<double>(stats[i].*counter.member)));
      }
      families.push_back(std::move(family));
    }
    prometheus::MetricFamily breaker =
        Family("filemesh_channel_breaker_state",
               "State of the primary's circuit breaker: 1 for the current state, 0 for the others.",
               MetricType::Gauge);
    for (size_t i = 0; i < channels_.size(); ++i) {
      for (const BreakerState state :
           {BreakerState::kClosed, BreakerState::kOpen, BreakerState::kHalfOpen}) {
        breaker.metric.push_back(Sample(
            {{"backend", channels_[i].first}, {"state", std::string(BreakerStateName(state))}},
            MetricType::Gauge, state == stats[i].breaker ? 1.0 : 0.0));
      }
    }
    families.push_back(std::move(breaker));
  }
  prometheus::MetricFamily operations = Family(
      "filemesh_http_operations",
      "Queued operations the gateway remembers (202 answers not yet expired).", MetricType::Gauge);
  operations.metric.push_back(Sample({}, MetricType::Gauge, static_cast<double>(operations_())));
  families.push_back(std::move(operations));
  prometheus::MetricFamily evicted =
      Family("filemesh_http_operations_evicted_total",
             "Operations forgotten before their ttl to stay within operation_capacity and "
             "operation_max_bytes.",
             MetricType::Counter);
  evicted.metric.push_back(
      Sample({}, MetricType::Counter, static_cast<double>(operations_evicted_())));
  families.push_back(std::move(evicted));
  return families;
}

GatewayMetrics::GatewayMetrics(prometheus::Registry& registry, std::vector<std::string> routes)
    : routes_(std::move(routes)),
      requests_(prometheus::BuildCounter()
                    .Name("filemesh_http_requests_total")
                    .Help("HTTP requests answered, by route template, status code and the "
                          "transport that served the backend call.")
                    .Register(registry)),
      counters_(std::make_unique<std::atomic<prometheus::Counter*>[]>(
          routes_.size() * kTransportKinds * kKnownStatuses.size())) {
  auto& latency = prometheus::BuildHistogram()
                      .Name("filemesh_http_request_duration_seconds")
                      .Help(
                          "Time from a request's arrival at the gateway to its response, by "
                          "route template.")
                      .Register(registry);
  for (const std::string& route : routes_) {
    durations_.push_back(&latency.Add({{"route", route}}, LatencyBuckets()));
  }
  for (size_t i = 0; i < routes_.size() * kTransportKinds * kKnownStatuses.size(); ++i) {
    counters_[i].store(nullptr, std::memory_order_relaxed);
  }
}

prometheus::Counter& GatewayMetrics::RequestCounter(size_t route, TransportKind served_by,
                                                    int status) {
  const int slot = StatusSlot(status);
  const auto kind = static_cast<size_t>(served_by);
  auto resolve = [&]() -> prometheus::Counter& {
    return requests_.Add({{"route", routes_[route]},
                          {"code", absl::StrCat(status)},
                          {"served_by", std::string(TransportKindName(served_by))}});
  };
  if (slot < 0 || kind >= kTransportKinds) return resolve();
  std::atomic<prometheus::Counter*>& cached =
      counters_[(route * kTransportKinds + kind) * kKnownStatuses.size() +
                static_cast<size_t>(slot)];
  prometheus::Counter* counter = cached.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Two threads may both resolve it: Add returns the same series.
    counter = &resolve();
    cached.store(counter, std::memory_order_release);
  }
  return *counter;
}

void GatewayMetrics::CountRequest(size_t route, TransportKind served_by, int status,
                                  double seconds) {
  durations_[route]->Observe(seconds);
  RequestCounter(route, served_by, status).Increment();
}

std::string RenderMetrics(const prometheus::Registry& registry,
                          const prometheus::Collectable& extra) {
  std::vector<prometheus::MetricFamily> families = registry.Collect();
  for (prometheus::MetricFamily& family : extra.Collect()) families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace filemesh::internal
