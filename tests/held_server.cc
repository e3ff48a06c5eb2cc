// A gRPC service for stopped_server_test, in a process of its own so that the
// test can SIGSTOP it: serves "/filemesh.v1.FileLister/List" by printing
// "held" on stdout and then holding the call until its deadline.
//
//   held_server LISTEN     prints "listening PORT", then serves until killed

#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "filemesh/file_service.hpp"
#include "filemesh/rpc/service_host.hpp"
#include "filemesh/service/process.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s LISTEN\n", argv[0]);
    return 2;
  }
  filemesh::TerminationSignals::Block();
  filemesh::ServiceHostOptions options;
  options.grpc_listen = argv[1];
  options.threads = 2;
  filemesh::ServiceHost host(options);
  host.RegisterRaw(filemesh::kListMethod, [](const std::string& request, absl::Time deadline) {
    std::printf("held\n");
    std::fflush(stdout);
    absl::SleepFor(deadline - absl::Now());
    return absl::StatusOr<std::string>(request);
  });
  if (const absl::Status status = host.Start(); !status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("listening %d\n", host.grpc_port());
  std::fflush(stdout);
  filemesh::TerminationSignals::Wait();
  host.Shutdown(absl::Seconds(1));
  return 0;
}
