// Round trips through FailoverChannel on loopback, server included: over
// gRPC, and over AMQP when FILEMESH_BENCH_AMQP_URL names a broker (bench/
// rpc_bench.sh starts a private one). Each call lists a three-entry directory
// through FileListerClient. Targets with 32 callers on the 2-core machine:
// gRPC >= 10,000 calls/s, AMQP >= 4,000 calls/s (items_per_second).
//
// BM_FastCalls/BM_FastCallsBesideSlowOnes (with a broker): the same fast
// calls through a channel with gRPC and an AMQP fallback, alone and while
// other callers keep 1-second calls going on the same server. A slow call is
// not a dead server: the fast calls' rate and p99 stay within 10 % of the
// fast-only run, nothing fails over and nothing is served twice
// (rpc_bench.sh prints the ratios).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "filemesh/file_lister.hpp"
#include "filemesh/file_service.hpp"
#include "filemesh/rpc/clients.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/rpc/process.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "filemesh/service/process.hpp"
#include "temp_tree.h"

namespace {

constexpr char kSlowMethod[] = "/filemesh.bench.Slow/Call";
constexpr int kSlowCallers = 4;
constexpr int kMixedHostThreads = 16;

struct Rig {
  filemesh::bench::TempDir tree{"filemesh-channel-bench"};
  std::unique_ptr<filemesh::FileLister> lister;
  std::unique_ptr<filemesh::ServiceHost> host;
  std::string amqp_url;
  std::shared_ptr<filemesh::FileListerClient> grpc_client;
  std::shared_ptr<filemesh::FileListerClient> amqp_client;
  // The mixed benchmarks (with a broker): a host with enough threads for the
  // slow calls beside the fast ones, and a gRPC + AMQP channel to it.
  std::unique_ptr<filemesh::ServiceHost> mixed_host;
  std::shared_ptr<filemesh::FailoverChannel> mixed;
  std::atomic<int64_t> fast_served{0};  // List handler runs on mixed_host
  std::atomic<int64_t> slow_served{0};  // slow handler runs on mixed_host
};

Rig& GetRig() {
  static Rig* rig = [] {
    filemesh::TuneProcessForRpc();  // as the services' main() does
    auto* r = new Rig;
    const int dir = filemesh::bench::MakeDir(r->tree.fd(), "d");
    for (const char* name : {"a", "b", "c"}) filemesh::bench::Touch(dir, name);
    close(dir);
    r->lister = std::make_unique<filemesh::FileLister>(r->tree.path());
    const char* url = std::getenv("FILEMESH_BENCH_AMQP_URL");
    r->amqp_url = url != nullptr ? url : "";
    filemesh::ServiceHostOptions options;
    options.grpc_listen = "127.0.0.1:0";
    options.amqp.url = r->amqp_url;
    options.amqp.queue_prefix = "bench.";
    if (const char* prefetch = std::getenv("FILEMESH_BENCH_PREFETCH")) {
      options.amqp_prefetch = std::atoi(prefetch);
    }
    r->host = std::make_unique<filemesh::ServiceHost>(options);
    r->host->AddFileLister(*r->lister);
    if (!r->host->Start().ok()) std::abort();

    filemesh::FailoverChannelOptions grpc;
    grpc.grpc_target = absl::StrCat("127.0.0.1:", r->host->grpc_port());
    r->grpc_client = std::make_shared<filemesh::FileListerClient>(
        filemesh::FailoverChannel::Create(grpc).value());
    if (!r->amqp_url.empty()) {
      filemesh::FailoverChannelOptions amqp;
      amqp.amqp.url = r->amqp_url;
      amqp.amqp.queue_prefix = "bench.";
      r->amqp_client = std::make_shared<filemesh::FileListerClient>(
          filemesh::FailoverChannel::Create(amqp).value());

      filemesh::ServiceHostOptions mixed;
      mixed.grpc_listen = "127.0.0.1:0";
      mixed.amqp.url = r->amqp_url;
      mixed.amqp.queue_prefix = "bench.mixed.";
      mixed.threads = kMixedHostThreads;
      r->mixed_host = std::make_unique<filemesh::ServiceHost>(mixed);
      r->mixed_host->Register<filemesh::v1::ListRequest, filemesh::v1::ListResponse>(
          filemesh::kListMethod, [r](const filemesh::v1::ListRequest& request, absl::Time) {
            ++r->fast_served;
            return r->lister->List(request);
          });
      r->mixed_host->RegisterRaw(kSlowMethod, [r](const std::string& request, absl::Time) {
        ++r->slow_served;
        std::this_thread::sleep_for(std::chrono::seconds(1));  // the slowness measured
        return absl::StatusOr<std::string>(request);
      });
      if (!r->mixed_host->Start().ok()) std::abort();
      filemesh::FailoverChannelOptions both;
      both.grpc_target = absl::StrCat("127.0.0.1:", r->mixed_host->grpc_port());
      both.amqp.url = r->amqp_url;
      both.amqp.queue_prefix = "bench.mixed.";
      r->mixed = filemesh::FailoverChannel::Create(both).value();
    }
    return r;
  }();
  return *rig;
}

void RoundTrips(benchmark::State& state, filemesh::FileListerClient* client) {
  filemesh::v1::ListRequest request;
  request.set_path("d");
  int64_t failed = 0;
  for (auto _ : state) {
    auto r = client->List(request, absl::Now() + absl::Seconds(10), nullptr);
    if (!r.ok() || r->entries_size() != 3) ++failed;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["failed"] =
      benchmark::Counter(static_cast<double>(failed), benchmark::Counter::kAvgThreadsRate);
  if (failed > 0) state.SkipWithError("some calls failed");
}

void BM_GrpcRoundTrip(benchmark::State& state) { RoundTrips(state, GetRig().grpc_client.get()); }
BENCHMARK(BM_GrpcRoundTrip)->Threads(1)->Threads(32)->UseRealTime()->MinTime(2.0);

void BM_AmqpRoundTrip(benchmark::State& state) {
  Rig& rig = GetRig();
  if (rig.amqp_client == nullptr) {
    state.SkipWithError("set FILEMESH_BENCH_AMQP_URL (bench/rpc_bench.sh does)");
    for (auto _ : state) {
    }
    return;
  }
  RoundTrips(state, rig.amqp_client.get());
}
BENCHMARK(BM_AmqpRoundTrip)->Threads(1)->Threads(32)->UseRealTime()->MinTime(2.0);

// Fast List calls through Rig::mixed; with `slow`, thread 0 also keeps
// kSlowCallers callers of the 1-second method busy for the whole run.
void FastCalls(benchmark::State& state, bool slow) {
  Rig& rig = GetRig();
  if (rig.mixed == nullptr) {
    state.SkipWithError("set FILEMESH_BENCH_AMQP_URL (bench/rpc_bench.sh does)");
    for (auto _ : state) {
    }
    return;
  }
  static std::atomic<bool> stop{false};
  static std::atomic<int64_t> slow_calls{0}, slow_bad{0};
  static std::atomic<int64_t> fast_calls{0}, fast_bad{0};
  static std::atomic<int64_t> fast_before{0}, slow_before{0};
  std::vector<std::thread> slow_callers;
  if (state.thread_index() == 0) {
    stop = false;
    slow_calls = slow_bad = fast_calls = fast_bad = 0;
    fast_before = rig.fast_served.load();
    slow_before = rig.slow_served.load();
    for (int i = 0; slow && i < kSlowCallers; ++i) {
      slow_callers.emplace_back([&rig] {
        while (!stop.load()) {
          ++slow_calls;
          filemesh::CallResult r =
              rig.mixed->Call(kSlowMethod, "s", absl::Now() + absl::Seconds(5));
          // Failed over or not answered: a slow server taken for a dead one.
          if (!r.response.ok() || r.info.served_by != filemesh::TransportKind::kGrpc) ++slow_bad;
        }
      });
    }
  }
  filemesh::v1::ListRequest request;
  request.set_path("d");
  const std::string bytes = request.SerializeAsString();
  std::vector<double> micros;
  micros.reserve(1 << 16);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    filemesh::CallResult r =
        rig.mixed->Call(filemesh::kListMethod, bytes, absl::Now() + absl::Seconds(10));
    micros.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
    ++fast_calls;
    if (!r.response.ok() || r.info.served_by != filemesh::TransportKind::kGrpc) ++fast_bad;
  }
  std::sort(micros.begin(), micros.end());
  const double p99 = micros.empty() ? 0 : micros[(micros.size() * 99) / 100];
  state.SetItemsProcessed(state.iterations());
  // Each caller's own p99, averaged over the callers.
  state.counters["p99_us"] = benchmark::Counter(p99, benchmark::Counter::kAvgThreads);
  if (state.thread_index() == 0) {
    stop = true;
    for (std::thread& t : slow_callers) t.join();
    // Calls are counted as made and as served: any difference is a call
    // served twice (or not at all).
    state.counters["fast_not_on_grpc"] = static_cast<double>(fast_bad.load());
    state.counters["slow_calls"] = static_cast<double>(slow_calls.load());
    state.counters["slow_not_on_grpc"] = static_cast<double>(slow_bad.load());
    state.counters["slow_served_twice"] =
        static_cast<double>(rig.slow_served.load() - slow_before.load() - slow_calls.load());
  }
}

void BM_FastCalls(benchmark::State& state) { FastCalls(state, false); }
BENCHMARK(BM_FastCalls)->Threads(16)->UseRealTime()->MinTime(3.0);
void BM_FastCallsBesideSlowOnes(benchmark::State& state) { FastCalls(state, true); }
BENCHMARK(BM_FastCallsBesideSlowOnes)->Threads(16)->UseRealTime()->MinTime(3.0);

}  // namespace
