// mserv1: the listing service. Serves FileLister.List for one directory over
// gRPC, RabbitMQ or both, until SIGTERM or SIGINT.
//
//   mserv1 --root /srv/data --grpc_listen 127.0.0.1:50051
//          --amqp_url amqp://guest:guest@127.0.0.1:5672/
//
// Flags: common/service_flags.cc; each also from FILEMESH_<NAME>.

#include "absl/flags/flag.h"

ABSL_FLAG(bool, one_file_system, false,
          "refuse to list a directory whose path crosses a mount point below --root");
#include "common/service_flags.h"
#include "filemesh/file_lister.hpp"
#include "filemesh/rpc/process.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "filemesh/service/process.hpp"

int main(int argc, char** argv) {
  filemesh::TerminationSignals::Block();  // before any thread starts
  filemesh::TuneProcessForRpc();
  filemesh::ParseFlags(argc, argv,
                       "mserv1: lists directories under --root over gRPC and/or RabbitMQ.\n\n"
                       "  mserv1 --root DIR [--grpc_listen HOST:PORT] [--amqp_url URL]");
  if (absl::GetFlag(FLAGS_grpc_reflection)) filemesh::EnableGrpcReflection();
  auto options = filemesh_examples::ServiceHostOptionsFromFlags();
  if (!options.ok()) filemesh_examples::Exit("mserv1", options.status());

  filemesh::FileListerOptions lister_options;
  lister_options.max_response_bytes = filemesh::ResponseBudget(options->max_message_bytes);
  lister_options.redact_outside_targets = absl::GetFlag(FLAGS_redact_outside_targets);
  lister_options.one_file_system = absl::GetFlag(FLAGS_one_file_system);
  filemesh::FileLister lister(absl::GetFlag(FLAGS_root), lister_options);
  if (!lister.status().ok()) filemesh_examples::Exit("mserv1", lister.status());

  filemesh::ServiceHost host(*options);
  host.AddFileLister(lister);
  filemesh_examples::ServeUntilTerminated("mserv1", host);
  return 0;
}
