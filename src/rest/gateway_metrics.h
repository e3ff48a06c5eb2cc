// The REST gateway's metrics on prometheus-cpp: request counts and latencies
// as families of the caller's prometheus::Registry, and the backends' channel
// counters and the operations gauge as a Collectable read at each scrape
// (their values live in the channels and the operation store).

#ifndef FILEMESH_SRC_REST_GATEWAY_METRICS_H_
#define FILEMESH_SRC_REST_GATEWAY_METRICS_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "filemesh/rpc/failover_channel.hpp"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace filemesh::internal {

// Bounds for request latencies, in seconds.
std::vector<double> LatencyBuckets();

// filemesh_channel_* for each backend's FailoverChannel and
// filemesh_http_operations, computed when collected.
class BackendCollector : public prometheus::Collectable {
 public:
  // `channels` ("lister", "searcher" with their channels) and `operations`
  // must outlive the collector.
  BackendCollector(std::vector<std::pair<std::string, const FailoverChannel*>> channels,
                   std::function<size_t()> operations,
                   std::function<uint64_t()> operations_evicted);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::vector<std::pair<std::string, const FailoverChannel*>> channels_;
  std::function<size_t()> operations_;
  std::function<uint64_t()> operations_evicted_;
};

class GatewayMetrics {
 public:
  // Adds filemesh_http_requests_total and filemesh_http_request_duration_seconds
  // to `registry`, which must outlive this object; `routes` are the route
  // label's values, indexed by the route numbers CountRequest takes.
  GatewayMetrics(prometheus::Registry& registry, std::vector<std::string> routes);

  // Counts one answered request and its latency. Each label set is resolved
  // once (prometheus-cpp's Family::Add takes a lock): after that, an atomic
  // add and a histogram observation.
  void CountRequest(size_t route, TransportKind served_by, int status, double seconds);

 private:
  prometheus::Counter& RequestCounter(size_t route, TransportKind served_by, int status);

  const std::vector<std::string> routes_;
  prometheus::Family<prometheus::Counter>& requests_;
  std::vector<prometheus::Histogram*> durations_;
  // One slot per route, transport kind and common status; null until used.
  std::unique_ptr<std::atomic<prometheus::Counter*>[]> counters_;
};

// The text exposition format 0.0.4 of everything `registry` holds and of
// `extra`.
std::string RenderMetrics(const prometheus::Registry& registry,
                          const prometheus::Collectable& extra);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_GATEWAY_METRICS_H_
