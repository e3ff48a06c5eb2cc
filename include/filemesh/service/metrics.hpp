// A small Prometheus metrics registry: counters, gauges and histograms with
// label sets, rendered in the text exposition format 0.0.4 (what a /metrics
// endpoint serves with `Content-Type: text/plain; version=0.0.4`).
//
//   filemesh::MetricsRegistry registry;
//   auto& requests = registry.AddCounter("app_requests_total", "Requests served.",
//                                        {"route", "code"});
//   filemesh::Counter& ok = requests.WithLabels({"/items", "200"});  // resolve once
//   ok.Increment();                                                 // one atomic add
//   std::string page = registry.Render();
//
// Metric and label names are the program's own: a name that is not valid in
// the format, a repeated metric name, or label values that do not match the
// label names are programming errors and abort with a message. Label values
// may hold anything; they are escaped (and bytes that are not UTF-8 written
// as the text `\xHH`).
//
// Thread safety: every method may be called from any thread. WithLabels takes
// its family's lock; updating a Counter, Gauge or Histogram is lock-free, so
// hot paths keep the reference WithLabels returns (valid as long as the
// registry lives).

#ifndef FILEMESH_SERVICE_METRICS_HPP_
#define FILEMESH_SERVICE_METRICS_HPP_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace filemesh {

// A count that only goes up.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted in fixed buckets (upper bounds, inclusive), with their
// sum and count.
class Histogram {
 public:
  // `upper_bounds`: finite and strictly increasing (the registry checks).
  explicit Histogram(std::shared_ptr<const std::vector<double>> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Counts `value` in the first bucket whose bound is >= value (or +Inf);
  // NaN is ignored.
  void Observe(double value);

  struct Snapshot {
    // Cumulative: counts[i] is the observations <= upper_bounds[i]; one more
    // element at the end for +Inf, equal to `count`.
    std::vector<uint64_t> cumulative_counts;
    uint64_t count = 0;
    double sum = 0;
  };
  // A reading taken while observations may go on (each bucket is read once).
  Snapshot snapshot() const;
  const std::vector<double>& upper_bounds() const { return *bounds_; }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<double> sum_{0.0};
};

// The series of one metric, one per distinct list of label values.
template <typename Series>
class MetricFamily {
 public:
  ~MetricFamily();
  MetricFamily(const MetricFamily&) = delete;
  MetricFamily& operator=(const MetricFamily&) = delete;

  // The series for `label_values` (one per label name, in order), made on
  // first use.
  Series& WithLabels(const std::vector<std::string>& label_values);

 private:
  friend class MetricsRegistry;
  struct State;
  explicit MetricFamily(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Defined in the library for these three series types only.
extern template class MetricFamily<Counter>;
extern template class MetricFamily<Gauge>;
extern template class MetricFamily<Histogram>;

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

enum class MetricType { kCounter, kGauge };

// One sample of a collected family (see AddCollected).
struct MetricSample {
  std::vector<std::string> label_values;
  double value = 0;
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // A family of counters (by convention named `..._total`). A family without
  // labels has its one series from the start, so it renders 0 before use.
  CounterFamily& AddCounter(std::string name, std::string help,
                            std::vector<std::string> label_names = {});
  GaugeFamily& AddGauge(std::string name, std::string help,
                        std::vector<std::string> label_names = {});
  // `upper_bounds` in the observed unit (seconds for durations); "le" may not
  // be a label name.
  HistogramFamily& AddHistogram(std::string name, std::string help,
                                std::vector<std::string> label_names,
                                std::vector<double> upper_bounds = LatencyBuckets());
  // A counter or gauge family whose samples `collect` computes at each
  // Render, for values kept elsewhere (a channel's own counters, a queue's
  // length). `collect` runs on the rendering thread with no registry lock
  // held; it must not add families.
  void AddCollected(std::string name, std::string help, MetricType type,
                    std::vector<std::string> label_names,
                    std::function<std::vector<MetricSample>()> collect);

  // Every family in the order added, series sorted by label values, as the
  // text exposition format 0.0.4.
  std::string Render() const;

  // Bounds for request latencies, in seconds: 0.0005, 0.001, 0.0025, 0.005,
  // 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10.
  static std::vector<double> LatencyBuckets();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh

#endif  // FILEMESH_SERVICE_METRICS_HPP_
