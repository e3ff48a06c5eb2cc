// The `filemesh` command's remote mode: `ls` and `find` through a gateway's
// REST API (docs/rest.md), with cpp-httplib's client.

#ifndef FILEMESH_SRC_CLI_REMOTE_H_
#define FILEMESH_SRC_CLI_REMOTE_H_

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/remote_failure.h"
#include "filemesh/v1/filemesh.pb.h"

namespace filemesh::cli {

class GatewayClient final : public RemoteGateway {
 public:
  using Options = GatewayOptions;

  // InvalidArgument for a URL that is not http(s)://HOST[:PORT][/].
  static absl::StatusOr<std::unique_ptr<GatewayClient>> Create(Options options);
  // Create as a GatewayConnector.
  static absl::StatusOr<std::unique_ptr<RemoteGateway>> Connect(Options options);
  ~GatewayClient() override;

  // GET /api/v1/files and /api/v1/search with the request's fields as query
  // parameters; a 202 is followed through its operation until it is done.
  absl::StatusOr<v1::ListResponse> List(const v1::ListRequest& request) override;
  absl::StatusOr<v1::SearchResponse> Search(const v1::SearchRequest& request) override;

 private:
  struct Impl;
  explicit GatewayClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh::cli

#endif  // FILEMESH_SRC_CLI_REMOTE_H_
