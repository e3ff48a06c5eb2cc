#include "mserv2/index_metrics.h"

#include <string>
#include <utility>

#include "absl/time/clock.h"

namespace filemesh_examples {
namespace {

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type,
                                double value,
                                std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return prometheus::MetricFamily{name, help, type, {metric}};
}

}  // namespace

std::vector<prometheus::MetricFamily> IndexMetrics::Collect() const {
  using prometheus::MetricType;
  const filemesh::FileIndexStats s = index_.stats();
  const auto count = [](uint64_t n) { return static_cast<double>(n); };
  std::vector<prometheus::MetricFamily> out;
  out.push_back(Family("filemesh_index_ready", "1 when searches are answered from the index",
                       MetricType::Gauge, s.ready ? 1 : 0));
  out.push_back(Family("filemesh_index_watch_mode",
                       "How the index hears of changes (the mode label: fanotify or inotify)",
                       MetricType::Gauge, 1, {{"mode", s.watch_mode}}));
  out.push_back(
      Family("filemesh_index_entries", "Entries indexed", MetricType::Gauge, count(s.entries)));
  out.push_back(Family("filemesh_index_memory_bytes", "Bytes the index holds", MetricType::Gauge,
                       count(s.memory_bytes)));
  out.push_back(Family("filemesh_index_build_seconds", "Time the first build took",
                       MetricType::Gauge, absl::ToDoubleSeconds(s.build_time)));
  out.push_back(Family(
      "filemesh_index_lag_seconds", "Seconds since the time every change before which is indexed",
      MetricType::Gauge, s.ready ? absl::ToDoubleSeconds(absl::Now() - s.as_of) : 0));
  out.push_back(Family("filemesh_index_events_total", "Change reports read from the kernel",
                       MetricType::Counter, count(s.events)));
  out.push_back(Family("filemesh_index_directories_refreshed_total",
                       "Directories read again after a report", MetricType::Counter,
                       count(s.directories_refreshed)));
  out.push_back(Family("filemesh_index_overflows_total",
                       "Reports lost (the kernel's queue overflowed)", MetricType::Counter,
                       count(s.overflows)));
  out.push_back(Family("filemesh_index_rescans_total", "Rescans of the whole tree",
                       MetricType::Counter, count(s.rescans)));
  out.push_back(Family("filemesh_index_verified_directories_total",
                       "Directories the periodic check compared with the disk", MetricType::Counter,
                       count(s.verified_directories)));
  out.push_back(Family("filemesh_index_verify_repairs_total",
                       "Directories the periodic check found different, and repaired",
                       MetricType::Counter, count(s.verify_repairs)));
  out.push_back(Family("filemesh_index_attributes_ready",
                       "1 when every entry's size, time and mode are kept (read after the build)",
                       MetricType::Gauge, s.attributes_ready ? 1 : 0));
  out.push_back(Family("filemesh_index_unwatched_directories",
                       "inotify: directories indexed but not watched (--index_max_watches)",
                       MetricType::Gauge, count(s.unwatched_directories)));
  out.push_back(Family("filemesh_index_snapshots_written_total", "Snapshots written (--index_dir)",
                       MetricType::Counter, count(s.snapshots_written)));
  out.push_back(Family("filemesh_index_snapshot_failing",
                       "1 when the last snapshot could not be written", MetricType::Gauge,
                       s.snapshot_error.empty() ? 0 : 1));
  prometheus::MetricFamily searches{"filemesh_index_searches_total",
                                    "Searches, by what answered them (index or walk)",
                                    MetricType::Counter,
                                    {}};
  for (const auto& [by, n] : {std::pair<const char*, uint64_t>{"index", s.searches_indexed},
                              std::pair<const char*, uint64_t>{"walk", s.searches_walked}}) {
    prometheus::ClientMetric metric;
    metric.label = {{"answered_by", by}};
    metric.counter.value = count(n);
    searches.metric.push_back(std::move(metric));
  }
  out.push_back(std::move(searches));
  return out;
}

}  // namespace filemesh_examples
