// Round trips through FailoverChannel on loopback, server included: over
// gRPC, and over AMQP when FILEMESH_BENCH_AMQP_URL names a broker (bench/
// rpc_bench.sh starts a private one). Each call lists a three-entry directory
// through FileListerClient. Targets with 32 callers on the 2-core machine:
// gRPC >= 10,000 calls/s, AMQP >= 4,000 calls/s (items_per_second).

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "filemesh/clients.hpp"
#include "filemesh/failover_channel.hpp"
#include "filemesh/file_lister.hpp"
#include "filemesh/process.hpp"
#include "filemesh/service_host.hpp"
#include "temp_tree.h"

namespace {

struct Rig {
  filemesh::bench::TempDir tree{"filemesh-channel-bench"};
  std::unique_ptr<filemesh::FileLister> lister;
  std::unique_ptr<filemesh::ServiceHost> host;
  std::string amqp_url;
  std::shared_ptr<filemesh::FileListerClient> grpc_client;
  std::shared_ptr<filemesh::FileListerClient> amqp_client;
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
    options.amqp_url = r->amqp_url;
    options.queue_prefix = "bench.";
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
      amqp.amqp_url = r->amqp_url;
      amqp.queue_prefix = "bench.";
      r->amqp_client = std::make_shared<filemesh::FileListerClient>(
          filemesh::FailoverChannel::Create(amqp).value());
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

}  // namespace
