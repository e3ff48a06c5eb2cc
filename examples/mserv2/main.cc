// mserv2: the search service. Serves FileSearcher.Search under one directory
// over gRPC, RabbitMQ or both, until SIGTERM or SIGINT. With --index, from a
// live index of the tree (FileIndex) instead of a walk per request.
//
//   mserv2 --root /srv/data --grpc_listen 127.0.0.1:50052
//          --amqp_url amqp://guest:guest@127.0.0.1:5672/ --index
//
// Flags: common/service_flags.cc and below; each also from FILEMESH_<NAME>.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/service_flags.h"
#include "filemesh/file_index.hpp"
#include "filemesh/file_searcher.hpp"
#include "filemesh/rpc/process.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "filemesh/service/log.hpp"
#include "filemesh/service/process.hpp"
#include "mserv2/index_metrics.h"
#include "prometheus/exposer.h"

ABSL_FLAG(bool, one_file_system, true,
          "searches that leave one_file_system unset stay on the filesystem of their start "
          "directory");
ABSL_FLAG(bool, index, false,
          "answer searches from a live index of --root (built at start, kept current from the "
          "kernel's change reports; searches walk until it is ready)");
ABSL_FLAG(std::string, index_watch, "auto",
          "how the index hears of changes: auto (fanotify where allowed, else inotify), fanotify, "
          "inotify");
ABSL_FLAG(int64_t, index_max_watches, 65536,
          "inotify: directories watched at most; the others are read again at each "
          "--index_verify_interval");
ABSL_FLAG(int64_t, index_max_entries, 50'000'000,
          "entries indexed at most (about 40 bytes each); a larger tree is walked");
ABSL_FLAG(absl::Duration, index_verify_interval, absl::Minutes(5),
          "how often a sample of directories is compared with the disk (0: never)");
ABSL_FLAG(int64_t, index_max_sized_candidates, 100'000,
          "a search with a size bound whose pattern names more entries than this is walked");
ABSL_FLAG(int64_t, index_verify_sample, 256,
          "directories picked at random and compared with the disk at each verification");
ABSL_FLAG(std::string, index_dir, "",
          "directory for the index's snapshot: a restart answers from it at once, then catches up "
          "with what changed meanwhile; empty: none (each start builds the index)");
ABSL_FLAG(absl::Duration, index_snapshot_interval, absl::Minutes(10),
          "how often the snapshot is written besides after the build and at exit (0: only then)");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT to serve Prometheus metrics of the index on (GET /metrics); empty: none");

namespace {

absl::StatusOr<filemesh::FileIndexOptions> IndexOptionsFromFlags(
    const filemesh::FileSearcherOptions& search) {
  filemesh::FileIndexOptions options;
  options.search = search;
  const std::string watch = absl::GetFlag(FLAGS_index_watch);
  if (watch == "auto") {
    options.watch = filemesh::IndexWatch::kAuto;
  } else if (watch == "fanotify") {
    options.watch = filemesh::IndexWatch::kFanotify;
  } else if (watch == "inotify") {
    options.watch = filemesh::IndexWatch::kInotify;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--index_watch must be auto, fanotify or inotify, not \"", watch, "\""));
  }
  const int64_t watches = absl::GetFlag(FLAGS_index_max_watches);
  const int64_t entries = absl::GetFlag(FLAGS_index_max_entries);
  const absl::Duration verify = absl::GetFlag(FLAGS_index_verify_interval);
  if (watches < 1) return absl::InvalidArgumentError("--index_max_watches must be 1 or more");
  if (entries < 1 || entries > 4'000'000'000) {
    return absl::InvalidArgumentError("--index_max_entries must be from 1 to 4000000000");
  }
  if (verify < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--index_verify_interval must not be negative");
  }
  const absl::Duration snapshots = absl::GetFlag(FLAGS_index_snapshot_interval);
  if (snapshots < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--index_snapshot_interval must not be negative");
  }
  options.snapshot_dir = absl::GetFlag(FLAGS_index_dir);
  options.snapshot_interval = snapshots;
  const int64_t sample = absl::GetFlag(FLAGS_index_verify_sample);
  if (sample < 1 || sample > 1'000'000) {
    return absl::InvalidArgumentError("--index_verify_sample must be from 1 to 1000000");
  }
  options.verify_sample = static_cast<size_t>(sample);
  const int64_t sized = absl::GetFlag(FLAGS_index_max_sized_candidates);
  if (sized < 1)
    return absl::InvalidArgumentError("--index_max_sized_candidates must be 1 or more");
  options.max_sized_candidates = static_cast<size_t>(sized);
  options.max_watches = static_cast<size_t>(watches);
  options.max_entries = static_cast<size_t>(entries);
  options.verify_interval = verify;
  return options;
}

// Logs when the index is ready (or why it will not be), from a thread of
// its own; stops with the service.
class IndexReporter {
 public:
  explicit IndexReporter(const filemesh::FileIndex& index)
      : thread_([this, &index] { Run(index); }) {}
  ~IndexReporter() {
    stop_.store(true);
    thread_.join();
  }

 private:
  // index_ready when searches go to the index (built, or loaded from its
  // snapshot), then index_current once it holds every change (after a
  // load: once it caught up), then index_attributes_kept once it holds every
  // entry's size, time and mode; or index_failed.
  void Run(const filemesh::FileIndex& index) {
    bool ready_logged = false;
    while (!stop_.load()) {
      const bool current = index.WaitUntilCurrent(absl::Now() + absl::Milliseconds(100));
      const filemesh::FileIndexStats s = index.stats();
      if (s.ready && !ready_logged) {
        ready_logged = true;
        if (!s.snapshot_refused.empty()) {
          filemesh::LogEvent(filemesh::LogLevel::kWarning, "index_snapshot_ignored",
                             {{"reason", s.snapshot_refused}});
        }
        filemesh::LogEvent(
            "index_ready",
            {{"mode", s.watch_mode},
             {"entries", absl::StrCat(s.entries)},
             {"memory_bytes", absl::StrCat(s.memory_bytes)},
             {"from_snapshot", s.from_snapshot ? "true" : "false"},
             {"load_seconds", absl::StrCat(absl::ToDoubleSeconds(s.snapshot_load_time))}});
      }
      if (current) {
        filemesh::LogEvent("index_current",
                           {{"entries", absl::StrCat(s.entries)},
                            {"build_seconds", absl::StrCat(absl::ToDoubleSeconds(s.build_time))}});
        ReportAttributes(index);
        return;
      }
      if (!index.status().ok()) {
        filemesh::LogEvent(filemesh::LogLevel::kError, "index_failed",
                           {{"error", index.status().ToString()}});
        return;
      }
    }
  }

  void ReportAttributes(const filemesh::FileIndex& index) {
    while (!stop_.load()) {
      const absl::Time deadline = absl::Now() + absl::Milliseconds(100);
      if (index.WaitUntilAttributesKept(deadline)) {
        const filemesh::FileIndexStats s = index.stats();
        filemesh::LogEvent("index_attributes_kept",
                           {{"seconds", absl::StrCat(absl::ToDoubleSeconds(s.attributes_time))},
                            {"memory_bytes", absl::StrCat(s.memory_bytes)}});
        return;
      }
      if (!index.status().ok()) {
        filemesh::LogEvent(filemesh::LogLevel::kError, "index_failed",
                           {{"error", index.status().ToString()}});
        return;
      }
      if (absl::Now() < deadline) return;  // the index stopped
    }
  }

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  filemesh::TerminationSignals::Block();  // before any thread starts
  filemesh::TuneProcessForRpc();
  filemesh::ParseFlags(argc, argv,
                       "mserv2: searches the tree under --root over gRPC and/or RabbitMQ.\n\n"
                       "  mserv2 --root DIR [--grpc_listen HOST:PORT] [--amqp_url URL] [--index]");
  if (absl::GetFlag(FLAGS_grpc_reflection)) filemesh::EnableGrpcReflection();
  auto options = filemesh_examples::ServiceHostOptionsFromFlags();
  if (!options.ok()) filemesh_examples::Exit("mserv2", options.status());

  filemesh::FileSearcherOptions searcher_options;
  searcher_options.max_response_bytes = filemesh::ResponseBudget(options->max_message_bytes);
  searcher_options.one_file_system = absl::GetFlag(FLAGS_one_file_system);
  searcher_options.redact_outside_targets = absl::GetFlag(FLAGS_redact_outside_targets);
  filemesh::FileSearcher searcher(absl::GetFlag(FLAGS_root), searcher_options);
  if (!searcher.status().ok()) filemesh_examples::Exit("mserv2", searcher.status());

  std::optional<filemesh::FileIndex> index;
  if (absl::GetFlag(FLAGS_index)) {
    auto index_options = IndexOptionsFromFlags(searcher_options);
    if (!index_options.ok()) filemesh_examples::Exit("mserv2", index_options.status());
    index.emplace(absl::GetFlag(FLAGS_root), *index_options);
    if (absl::Status started = index->Start(); !started.ok()) {
      filemesh_examples::Exit("mserv2", started);
    }
    filemesh::LogEvent("index_building",
                       {{"root", index->root()}, {"mode", index->stats().watch_mode}});
  }
  std::optional<IndexReporter> reporter;
  if (index.has_value()) reporter.emplace(*index);

  // Metrics of the index, when asked for.
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<filemesh_examples::IndexMetrics> metrics;
  if (const std::string listen = absl::GetFlag(FLAGS_metrics_listen); !listen.empty()) {
    if (!index.has_value()) {
      filemesh_examples::Exit(
          "mserv2", absl::InvalidArgumentError("--metrics_listen exports the index's metrics: it "
                                               "needs --index"));
    }
    try {
      exposer = std::make_unique<prometheus::Exposer>(listen, 1);
    } catch (const std::exception& e) {
      filemesh_examples::Exit("mserv2", absl::UnavailableError(absl::StrCat(
                                            "--metrics_listen ", listen, ": ", e.what())));
    }
    metrics = std::make_shared<filemesh_examples::IndexMetrics>(*index);
    exposer->RegisterCollectable(metrics);
    filemesh::LogEvent("metrics_listening", {{"address", listen}});
  }

  filemesh::ServiceHost host(*options);
  if (index.has_value()) {
    host.AddFileSearcher(*index);
  } else {
    host.AddFileSearcher(searcher);
  }
  filemesh_examples::ServeUntilTerminated("mserv2", host);
  return 0;
}
