// MetricsRegistry: the text exposition format read back line by line, label
// escaping, cumulative histogram buckets, collected families, and counts
// that add up under concurrent updates.

#include "filemesh/service/metrics.hpp"

#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace filemesh {
namespace {

// One sample line, parsed.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped values
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> help;  // unescaped
  std::map<std::string, std::string> type;
  std::vector<Sample> samples;

  // The value of the sample with exactly these labels; NaN-free tests use -1
  // for "absent".
  double Value(const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return -1;
  }
};

// A strict reader of format 0.0.4: every line is a HELP, a TYPE or a sample
// of a family declared before it; anything else fails the test.
Exposition Parse(const std::string& text) {
  Exposition out;
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the last line must end with \\n";
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const std::string l(line);
    if (l.rfind("# HELP ", 0) == 0) {
      const size_t space = l.find(' ', 7);
      EXPECT_NE(space, std::string::npos) << l;
      std::string help;
      for (size_t i = space + 1; i < l.size(); ++i) {
        if (l[i] == '\\' && i + 1 < l.size()) {
          ++i;
          help.push_back(l[i] == 'n' ? '\n' : l[i]);
        } else {
          help.push_back(l[i]);
        }
      }
      out.help[l.substr(7, space - 7)] = help;
      continue;
    }
    if (l.rfind("# TYPE ", 0) == 0) {
      const std::vector<std::string> parts = absl::StrSplit(l.substr(7), ' ');
      EXPECT_EQ(parts.size(), 2u) << l;
      if (parts.size() == 2) out.type[parts[0]] = parts[1];
      continue;
    }
    EXPECT_NE(l[0], '#') << "unknown comment line: " << l;
    Sample s;
    size_t i = 0;
    while (i < l.size() && l[i] != '{' && l[i] != ' ') s.name.push_back(l[i++]);
    if (i < l.size() && l[i] == '{') {
      ++i;
      while (i < l.size() && l[i] != '}') {
        std::string key;
        while (i < l.size() && l[i] != '=') key.push_back(l[i++]);
        EXPECT_TRUE(i + 1 < l.size() && l[i + 1] == '"') << l;
        i += 2;
        std::string value;
        while (i < l.size() && l[i] != '"') {
          if (l[i] == '\\') {
            ++i;
            EXPECT_TRUE(l[i] == '\\' || l[i] == '"' || l[i] == 'n') << "bad escape in " << l;
            value.push_back(l[i] == 'n' ? '\n' : l[i]);
          } else {
            EXPECT_NE(l[i], '\n');
            value.push_back(l[i]);
          }
          ++i;
        }
        ++i;  // closing quote
        s.labels[key] = value;
        if (i < l.size() && l[i] == ',') ++i;
      }
      ++i;  // closing brace
    }
    EXPECT_TRUE(i < l.size() && l[i] == ' ') << l;
    const std::string number = l.substr(i + 1);
    if (number == "+Inf") {
      s.value = std::numeric_limits<double>::infinity();
    } else {
      char* end = nullptr;
      s.value = std::strtod(number.c_str(), &end);
      EXPECT_EQ(*end, '\0') << "not a number: " << l;
    }
    // The sample belongs to a declared family.
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string sfx(suffix);
      if (out.type.count(family) == 0 && family.size() > sfx.size() &&
          family.compare(family.size() - sfx.size(), sfx.size(), sfx) == 0) {
        const std::string base = family.substr(0, family.size() - sfx.size());
        if (out.type.count(base) != 0 && out.type[base] == "histogram") family = base;
      }
    }
    EXPECT_EQ(out.type.count(family), 1u) << "sample of an undeclared family: " << l;
    out.samples.push_back(std::move(s));
  }
  return out;
}

TEST(MetricsRegistryTest, CountersRenderWithHelpTypeAndLabels) {
  MetricsRegistry registry;
  CounterFamily& requests =
      registry.AddCounter("app_requests_total", "Requests served.", {"route", "code"});
  requests.WithLabels({"/a", "200"}).Increment();
  requests.WithLabels({"/a", "200"}).Increment(4);
  requests.WithLabels({"/b", "404"}).Increment();
  const Exposition e = Parse(registry.Render());
  EXPECT_EQ(e.help.at("app_requests_total"), "Requests served.");
  EXPECT_EQ(e.type.at("app_requests_total"), "counter");
  EXPECT_EQ(e.Value("app_requests_total", {{"route", "/a"}, {"code", "200"}}), 5);
  EXPECT_EQ(e.Value("app_requests_total", {{"route", "/b"}, {"code", "404"}}), 1);
  EXPECT_EQ(e.samples.size(), 2u);
}

TEST(MetricsRegistryTest, WithLabelsReturnsTheSameSeriesEachTime) {
  MetricsRegistry registry;
  CounterFamily& family = registry.AddCounter("c_total", "c", {"k"});
  EXPECT_EQ(&family.WithLabels({"x"}), &family.WithLabels({"x"}));
  EXPECT_NE(&family.WithLabels({"x"}), &family.WithLabels({"y"}));
}

TEST(MetricsRegistryTest, UnlabeledFamiliesRenderZeroBeforeUse) {
  MetricsRegistry registry;
  registry.AddCounter("starts_total", "Starts.");
  registry.AddGauge("temperature", "Degrees.");
  const Exposition e = Parse(registry.Render());
  EXPECT_EQ(e.Value("starts_total", {}), 0);
  EXPECT_EQ(e.Value("temperature", {}), 0);
}

TEST(MetricsRegistryTest, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry registry;
  CounterFamily& family = registry.AddCounter("odd_total", "Help with \\ and\nnewline.", {"path"});
  const std::string hostile = "quote\" back\\slash new\nline } { = ,";
  family.WithLabels({hostile}).Increment();
  family.WithLabels({"bad \xff byte"}).Increment(2);
  const std::string text = registry.Render();
  const Exposition e = Parse(text);
  EXPECT_EQ(e.help.at("odd_total"), "Help with \\ and\nnewline.");
  EXPECT_EQ(e.Value("odd_total", {{"path", hostile}}), 1);
  EXPECT_EQ(e.Value("odd_total", {{"path", "bad \\xff byte"}}), 2);
  EXPECT_EQ(text.find('\xff'), std::string::npos);
}

TEST(MetricsRegistryTest, GaugesSetAndAdd) {
  MetricsRegistry registry;
  Gauge& gauge = registry.AddGauge("queue_length", "Items.", {"queue"}).WithLabels({"q"});
  gauge.Set(2.5);
  gauge.Add(-1);
  gauge.Add(0.25);
  EXPECT_DOUBLE_EQ(gauge.value(), 1.75);
  EXPECT_EQ(Parse(registry.Render()).Value("queue_length", {{"queue", "q"}}), 1.75);
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  MetricsRegistry registry;
  Histogram& h =
      registry.AddHistogram("latency_seconds", "Latency.", {"route"}, {0.0005, 0.01, 1, 10})
          .WithLabels({"/a"});
  for (double v : {0.0001, 0.0005, 0.002, 0.5, 0.7, 3.0, 99.0}) h.Observe(v);
  const Exposition e = Parse(registry.Render());
  EXPECT_EQ(e.type.at("latency_seconds"), "histogram");
  auto bucket = [&](const std::string& le) {
    return e.Value("latency_seconds_bucket", {{"route", "/a"}, {"le", le}});
  };
  EXPECT_EQ(bucket("0.0005"), 2);  // the bound is inclusive
  EXPECT_EQ(bucket("0.01"), 3);
  EXPECT_EQ(bucket("1"), 5);
  EXPECT_EQ(bucket("10"), 6);
  EXPECT_EQ(bucket("+Inf"), 7);
  EXPECT_EQ(e.Value("latency_seconds_count", {{"route", "/a"}}), 7);
  EXPECT_NEAR(e.Value("latency_seconds_sum", {{"route", "/a"}}), 103.2026, 1e-9);
  // Buckets never decrease, in the order written.
  double previous = 0;
  for (const Sample& s : e.samples) {
    if (s.name != "latency_seconds_bucket") continue;
    EXPECT_GE(s.value, previous);
    previous = s.value;
  }
}

TEST(MetricsRegistryTest, HistogramIgnoresNaN) {
  MetricsRegistry registry;
  Histogram& h = registry.AddHistogram("h_seconds", "h", {}, {1}).WithLabels({});
  h.Observe(std::strtod("nan", nullptr));
  h.Observe(0.5);
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.sum, 0.5);
}

TEST(MetricsRegistryTest, DefaultLatencyBucketsRenderAsPlainDecimals) {
  MetricsRegistry registry;
  registry.AddHistogram("d_seconds", "d", {}).WithLabels({}).Observe(0.003);
  const std::string text = registry.Render();
  for (const char* le : {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                         "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}) {
    EXPECT_NE(text.find(absl::StrCat("d_seconds_bucket{le=\"", le, "\"}")), std::string::npos)
        << le;
  }
  const Exposition e = Parse(text);
  EXPECT_EQ(e.Value("d_seconds_bucket", {{"le", "0.0025"}}), 0);
  EXPECT_EQ(e.Value("d_seconds_bucket", {{"le", "0.005"}}), 1);
}

TEST(MetricsRegistryTest, CollectedFamiliesAreComputedAtEachRender) {
  MetricsRegistry registry;
  double level = 3;
  registry.AddCollected("pool_size", "Size.", MetricType::kGauge, {"pool"}, [&level] {
    return std::vector<MetricSample>{{{"a"}, level}, {{"b"}, level * 2}};
  });
  registry.AddCollected("events_total", "Events.", MetricType::kCounter, {}, [] {
    return std::vector<MetricSample>{{{}, 12345678901.0}};
  });
  Exposition e = Parse(registry.Render());
  EXPECT_EQ(e.type.at("pool_size"), "gauge");
  EXPECT_EQ(e.type.at("events_total"), "counter");
  EXPECT_EQ(e.Value("pool_size", {{"pool", "b"}}), 6);
  EXPECT_NE(registry.Render().find("events_total 12345678901\n"), std::string::npos);
  level = 4;
  e = Parse(registry.Render());
  EXPECT_EQ(e.Value("pool_size", {{"pool", "a"}}), 4);
}

TEST(MetricsRegistryTest, FamiliesRenderInTheOrderAdded) {
  MetricsRegistry registry;
  registry.AddCounter("zeta_total", "z");
  registry.AddCounter("alpha_total", "a");
  const std::string text = registry.Render();
  EXPECT_LT(text.find("zeta_total"), text.find("alpha_total"));
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAllCount) {
  MetricsRegistry registry;
  CounterFamily& counters = registry.AddCounter("hits_total", "Hits.", {"worker_group"});
  HistogramFamily& histograms = registry.AddHistogram("work_seconds", "Work.", {}, {0.5, 1});
  Gauge& gauge = registry.AddGauge("balance", "Balance.").WithLabels({});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Counter& shared = counters.WithLabels({"shared"});
      Counter& own = counters.WithLabels({absl::StrCat("own", t)});
      Histogram& h = histograms.WithLabels({});
      for (int i = 0; i < kPerThread; ++i) {
        shared.Increment();
        own.Increment();
        h.Observe(i % 2 == 0 ? 0.25 : 0.75);
        gauge.Add(1);
      }
    });
  }
  // Rendering while the counts move must still give well-formed text.
  Parse(registry.Render());
  for (std::thread& thread : threads) thread.join();
  const Exposition e = Parse(registry.Render());
  EXPECT_EQ(e.Value("hits_total", {{"worker_group", "shared"}}), kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(e.Value("hits_total", {{"worker_group", absl::StrCat("own", t)}}), kPerThread);
  }
  EXPECT_EQ(e.Value("work_seconds_count", {}), kThreads * kPerThread);
  EXPECT_EQ(e.Value("work_seconds_bucket", {{"le", "0.5"}}), kThreads * kPerThread / 2);
  EXPECT_DOUBLE_EQ(e.Value("work_seconds_sum", {}), kThreads * kPerThread * 0.5);
  EXPECT_EQ(gauge.value(), kThreads * kPerThread);
}

using MetricsRegistryDeathTest = ::testing::Test;

TEST_F(MetricsRegistryDeathTest, ProgrammingErrorsAbortWithAMessage) {
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounter("1bad", "x");
      },
      "not a valid metric name");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounter("dup_total", "x");
        r.AddGauge("dup_total", "x");
      },
      "added twice");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounter("c_total", "x", {"a-b"});
      },
      "not a valid label name");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddHistogram("h", "x", {"le"});
      },
      "may not have a label named le");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddHistogram("h", "x", {}, {1, 1});
      },
      "finite and increasing");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounter("c_total", "x", {"a", "b"}).WithLabels({"only-one"});
      },
      "has 2 labels but was given 1");
}

}  // namespace
}  // namespace filemesh
