#include "filemesh/service/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/absl_compat.h"
#include "base/utf8.h"

namespace filemesh {
namespace {

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "filemesh::MetricsRegistry: %s\n", message.c_str());
  std::abort();
}

bool IsNameChar(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         (allow_colon && c == ':');
}

// [a-zA-Z_:][a-zA-Z0-9_:]* for metrics, [a-zA-Z_][a-zA-Z0-9_]* for labels.
bool IsValidName(std::string_view name, bool allow_colon) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(),
                     [allow_colon](char c) { return IsNameChar(c, allow_colon); });
}

struct FamilyInfo {
  std::string name;
  std::string help;
  std::string_view type;  // "counter", "gauge", "histogram"
  std::vector<std::string> label_names;
};

void CheckFamily(const FamilyInfo& info) {
  if (!IsValidName(info.name, /*allow_colon=*/true)) {
    Fail(absl::StrCat("\"", info.name, "\" is not a valid metric name"));
  }
  std::set<std::string_view> seen;
  for (const std::string& label : info.label_names) {
    if (!IsValidName(label, /*allow_colon=*/false) || label.rfind("__", 0) == 0) {
      Fail(absl::StrCat("\"", label, "\" is not a valid label name (metric ", info.name, ")"));
    }
    if (info.type == "histogram" && label == "le") {
      Fail(absl::StrCat("histogram ", info.name, " may not have a label named le"));
    }
    if (!seen.insert(label).second) {
      Fail(absl::StrCat("label \"", label, "\" repeats in metric ", info.name));
    }
  }
}

void CheckLabelValues(const FamilyInfo& info, const std::vector<std::string>& values) {
  if (values.size() != info.label_names.size()) {
    Fail(absl::StrCat("metric ", info.name, " has ", info.label_names.size(),
                      " labels but was given ", values.size(), " values"));
  }
}

// Numbers as Prometheus parses them: "NaN", "+Inf", "-Inf", else the
// shortest form that reads back exactly (plain decimals in the usual range).
void AppendNumber(double value, std::string* out) {
  if (std::isnan(value)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out->append(value > 0 ? "+Inf" : "-Inf");
    return;
  }
  char buffer[400];
  const double magnitude = std::fabs(value);
  const std::chars_format format = (magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e15))
                                       ? std::chars_format::fixed
                                       : std::chars_format::general;
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value, format);
  out->append(buffer, result.ptr);
}

// Label values: backslash, double quote and newline escaped; bytes that are
// not UTF-8 in display form.
void AppendLabelValue(std::string_view value, std::string* out) {
  std::string display;
  if (!internal::IsValidUtf8(value)) internal::AppendDisplayForm(value, &display);
  for (const char c : display.empty() ? value : std::string_view(display)) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '"':
        out->append("\\\"");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        out->push_back(c);
    }
  }
}

void AppendHeader(const FamilyInfo& info, std::string* out) {
  absl::StrAppend(out, "# HELP ", info.name, " ");
  for (const char c : info.help) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
  absl::StrAppend(out, "\n# TYPE ", info.name, " ", internal::AbslView(info.type), "\n");
}

// `name``suffix`{labels[,le="bound"]} followed by a space.
void AppendSeriesName(const FamilyInfo& info, std::string_view suffix,
                      const std::vector<std::string>& values, std::string_view le,
                      std::string* out) {
  absl::StrAppend(out, info.name, internal::AbslView(suffix));
  if (!values.empty() || !le.empty()) {
    out->push_back('{');
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out->push_back(',');
      absl::StrAppend(out, info.label_names[i], "=\"");
      AppendLabelValue(values[i], out);
      out->push_back('"');
    }
    if (!le.empty()) {
      if (!values.empty()) out->push_back(',');
      absl::StrAppend(out, "le=\"", internal::AbslView(le), "\"");
    }
    out->push_back('}');
  }
  out->push_back(' ');
}

void AppendSeries(const FamilyInfo& info, const std::vector<std::string>& values,
                  const Counter& counter, std::string* out) {
  AppendSeriesName(info, "", values, "", out);
  absl::StrAppend(out, counter.value(), "\n");
}

void AppendSeries(const FamilyInfo& info, const std::vector<std::string>& values,
                  const Gauge& gauge, std::string* out) {
  AppendSeriesName(info, "", values, "", out);
  AppendNumber(gauge.value(), out);
  out->push_back('\n');
}

void AppendSeries(const FamilyInfo& info, const std::vector<std::string>& values,
                  const Histogram& histogram, std::string* out) {
  const Histogram::Snapshot snapshot = histogram.snapshot();
  const std::vector<double>& bounds = histogram.upper_bounds();
  std::string le;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    le.clear();
    if (i < bounds.size()) {
      AppendNumber(bounds[i], &le);
    } else {
      le = "+Inf";
    }
    AppendSeriesName(info, "_bucket", values, le, out);
    absl::StrAppend(out, snapshot.cumulative_counts[i], "\n");
  }
  AppendSeriesName(info, "_sum", values, "", out);
  AppendNumber(snapshot.sum, out);
  out->push_back('\n');
  AppendSeriesName(info, "_count", values, "", out);
  absl::StrAppend(out, snapshot.count, "\n");
}

void AtomicAdd(std::atomic<double>& target, double delta) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + delta, std::memory_order_relaxed)) {
  }
}

}  // namespace

void Gauge::Add(double delta) { AtomicAdd(value_, delta); }

Histogram::Histogram(std::shared_ptr<const std::vector<double>> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_->size() + 1)) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  const std::vector<double>& bounds = *bounds_;
  const size_t bucket =
      static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, value);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative_counts.resize(bounds_->size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative_counts[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

template <typename Series>
struct MetricFamily<Series>::State {
  FamilyInfo info;
  std::shared_ptr<const std::vector<double>> bounds;  // histograms only
  mutable std::mutex mu;
  std::map<std::vector<std::string>, std::unique_ptr<Series>> series;

  std::unique_ptr<Series> Make() const {
    if constexpr (std::is_same_v<Series, Histogram>) {
      return std::make_unique<Histogram>(bounds);
    } else {
      return std::make_unique<Series>();
    }
  }

  void Render(std::string* out) const {
    AppendHeader(info, out);
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [values, one] : series) AppendSeries(info, values, *one, out);
  }
};

template <typename Series>
MetricFamily<Series>::MetricFamily(std::unique_ptr<State> state) : state_(std::move(state)) {}

template <typename Series>
MetricFamily<Series>::~MetricFamily() = default;

template <typename Series>
Series& MetricFamily<Series>::WithLabels(const std::vector<std::string>& label_values) {
  CheckLabelValues(state_->info, label_values);
  std::lock_guard<std::mutex> lock(state_->mu);
  std::unique_ptr<Series>& slot = state_->series[label_values];
  if (slot == nullptr) slot = state_->Make();
  return *slot;
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

struct MetricsRegistry::Impl {
  mutable std::mutex mu;
  std::set<std::string, std::less<>> names;
  std::vector<std::unique_ptr<CounterFamily>> counters;
  std::vector<std::unique_ptr<GaugeFamily>> gauges;
  std::vector<std::unique_ptr<HistogramFamily>> histograms;
  // One per family, in the order added.
  std::vector<std::function<void(std::string*)>> renderers;

  void Claim(const FamilyInfo& info) {
    CheckFamily(info);
    if (!names.insert(info.name).second) Fail(absl::StrCat("metric ", info.name, " added twice"));
  }

  template <typename Series>
  MetricFamily<Series>& Add(std::vector<std::unique_ptr<MetricFamily<Series>>>& owner,
                            FamilyInfo&& info,
                            std::shared_ptr<const std::vector<double>>&& bounds) {
    auto state = std::make_unique<typename MetricFamily<Series>::State>();
    state->info = std::move(info);
    state->bounds = std::move(bounds);
    const typename MetricFamily<Series>::State* view = state.get();
    std::lock_guard<std::mutex> lock(mu);
    Claim(state->info);
    owner.push_back(
        std::unique_ptr<MetricFamily<Series>>(new MetricFamily<Series>(std::move(state))));
    renderers.emplace_back([view](std::string* out) { view->Render(out); });
    MetricFamily<Series>& family = *owner.back();
    // A family without labels has exactly one series: make it now so it
    // renders before first use.
    if (view->info.label_names.empty()) family.WithLabels({});
    return family;
  }
};

MetricsRegistry::MetricsRegistry() : impl_(std::make_unique<Impl>()) {}
MetricsRegistry::~MetricsRegistry() = default;

CounterFamily& MetricsRegistry::AddCounter(std::string name, std::string help,
                                           std::vector<std::string> label_names) {
  return impl_->Add<Counter>(
      impl_->counters,
      FamilyInfo{std::move(name), std::move(help), "counter", std::move(label_names)}, nullptr);
}

GaugeFamily& MetricsRegistry::AddGauge(std::string name, std::string help,
                                       std::vector<std::string> label_names) {
  return impl_->Add<Gauge>(
      impl_->gauges, FamilyInfo{std::move(name), std::move(help), "gauge", std::move(label_names)},
      nullptr);
}

HistogramFamily& MetricsRegistry::AddHistogram(std::string name, std::string help,
                                               std::vector<std::string> label_names,
                                               std::vector<double> upper_bounds) {
  if (upper_bounds.empty()) Fail(absl::StrCat("histogram ", name, " needs at least one bucket"));
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i]) || (i > 0 && upper_bounds[i] <= upper_bounds[i - 1])) {
      Fail(absl::StrCat("histogram ", name, ": bucket bounds must be finite and increasing"));
    }
  }
  return impl_->Add<Histogram>(
      impl_->histograms,
      FamilyInfo{std::move(name), std::move(help), "histogram", std::move(label_names)},
      std::make_shared<const std::vector<double>>(std::move(upper_bounds)));
}

void MetricsRegistry::AddCollected(std::string name, std::string help, MetricType type,
                                   std::vector<std::string> label_names,
                                   std::function<std::vector<MetricSample>()> collect) {
  auto info = std::make_shared<const FamilyInfo>(
      FamilyInfo{std::move(name), std::move(help),
                 type == MetricType::kCounter ? "counter" : "gauge", std::move(label_names)});
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->Claim(*info);
  impl_->renderers.emplace_back([info, collect = std::move(collect)](std::string* out) {
    AppendHeader(*info, out);
    for (const MetricSample& sample : collect()) {
      CheckLabelValues(*info, sample.label_values);
      AppendSeriesName(*info, "", sample.label_values, "", out);
      AppendNumber(sample.value, out);
      out->push_back('\n');
    }
  });
}

std::string MetricsRegistry::Render() const {
  std::vector<std::function<void(std::string*)>> renderers;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    renderers = impl_->renderers;
  }
  std::string out;
  for (const auto& render : renderers) render(&out);
  return out;
}

std::vector<double> MetricsRegistry::LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace filemesh
