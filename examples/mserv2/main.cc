// mserv2: the search service. Serves FileSearcher.Search under one directory
// over gRPC, RabbitMQ or both, until SIGTERM or SIGINT.
//
//   mserv2 --root /srv/data --grpc_listen 127.0.0.1:50052
//          --amqp_url amqp://guest:guest@127.0.0.1:5672/
//
// Flags: common/service_flags.cc; each also from FILEMESH_<NAME>.

#include "absl/flags/flag.h"
#include "common/service_flags.h"
#include "filemesh/file_searcher.hpp"
#include "filemesh/rpc/process.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "filemesh/service/process.hpp"

ABSL_FLAG(bool, one_file_system, true,
          "searches that leave one_file_system unset stay on the filesystem of their start "
          "directory");

int main(int argc, char** argv) {
  filemesh::TerminationSignals::Block();  // before any thread starts
  filemesh::TuneProcessForRpc();
  filemesh::ParseFlags(argc, argv,
                       "mserv2: searches the tree under --root over gRPC and/or RabbitMQ.\n\n"
                       "  mserv2 --root DIR [--grpc_listen HOST:PORT] [--amqp_url URL]");
  if (absl::GetFlag(FLAGS_grpc_reflection)) filemesh::EnableGrpcReflection();
  auto options = filemesh_examples::ServiceHostOptionsFromFlags();
  if (!options.ok()) filemesh_examples::Exit("mserv2", options.status());

  filemesh::FileSearcherOptions searcher_options;
  searcher_options.max_response_bytes = filemesh::ResponseBudget(options->max_message_bytes);
  searcher_options.one_file_system = absl::GetFlag(FLAGS_one_file_system);
  searcher_options.redact_outside_targets = absl::GetFlag(FLAGS_redact_outside_targets);
  filemesh::FileSearcher searcher(absl::GetFlag(FLAGS_root), searcher_options);
  if (!searcher.status().ok()) filemesh_examples::Exit("mserv2", searcher.status());

  filemesh::ServiceHost host(*options);
  host.AddFileSearcher(searcher);
  filemesh_examples::ServeUntilTerminated("mserv2", host);
  return 0;
}
