// failover_client: serves a directory with ServiceHost on gRPC (loopback, a
// free port) and lists it through FailoverChannel + FileListerClient, then
// stops the server and shows the channel's answer without a fallback.
//
//   failover_client ROOT [PATH]

#include <cstdio>
#include <string>

#include "filemesh/file_lister.hpp"
#include "filemesh/rpc/clients.hpp"
#include "filemesh/rpc/failover_channel.hpp"
#include "filemesh/rpc/service_host.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s ROOT [PATH]\n", argv[0]);
    return 2;
  }
  filemesh::FileLister lister(argv[1]);

  filemesh::ServiceHostOptions host_options;
  host_options.grpc_listen = "127.0.0.1:0";
  filemesh::ServiceHost host(host_options);
  host.AddFileLister(lister);
  if (auto status = host.Start(); !status.ok()) {
    std::fprintf(stderr, "failover_client: %s\n", status.ToString().c_str());
    return 1;
  }

  filemesh::FailoverChannelOptions options;
  options.grpc_target = "127.0.0.1:" + std::to_string(host.grpc_port());
  auto channel = filemesh::FailoverChannel::Create(options);
  if (!channel.ok()) {
    std::fprintf(stderr, "failover_client: %s\n", channel.status().ToString().c_str());
    return 1;
  }
  filemesh::FileListerClient client(*channel);

  filemesh::v1::ListRequest request;
  request.set_path(argc == 3 ? argv[2] : "");
  filemesh::CallInfo info;
  auto page = client.List(request, absl::Now() + absl::Seconds(5), &info);
  if (!page.ok()) {
    std::fprintf(stderr, "failover_client: %s\n", page.status().ToString().c_str());
    return 1;
  }
  for (const auto& entry : page->entries()) {
    std::printf("%s (served by %s)\n", entry.path().c_str(),
                std::string(filemesh::TransportKindName(info.served_by)).c_str());
  }

  host.Shutdown(absl::Seconds(1));
  auto after = client.List(request, absl::Now() + absl::Seconds(1), &info);
  std::printf("after shutdown: %s\n", after.status().ToString().c_str());
  return after.ok() ? 1 : 0;  // with no server and no fallback the call must fail
}
