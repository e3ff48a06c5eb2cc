// The `filemesh` command-line tool: `filemesh ls` and `filemesh find`.

#ifndef FILEMESH_SRC_CLI_COMMANDS_H_
#define FILEMESH_SRC_CLI_COMMANDS_H_

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "filemesh/v1/filemesh.pb.h"

namespace filemesh::cli {

// Exit codes: 0 success (also when the reader of the output went away, as
// with `| head`), 1 the operation failed, 2 bad usage, 130 interrupted.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;

// Remote mode (--gateway): `ls` and `find` through a gateway's REST API.
class RemoteGateway {
 public:
  virtual ~RemoteGateway() = default;
  // GET /api/v1/files and /api/v1/search; a 202 is followed until done.
  virtual absl::StatusOr<v1::ListResponse> List(const v1::ListRequest& request) = 0;
  virtual absl::StatusOr<v1::SearchResponse> Search(const v1::SearchRequest& request) = 0;
};

struct GatewayOptions {
  std::string url;      // http://HOST:PORT or https://HOST:PORT, no path
  std::string api_key;  // sent as "Authorization: Bearer KEY" when set
  // https:// only: the CA file (PEM) the gateway's certificate must lead to;
  // empty: the system's trusted CAs.
  std::string ca_file;
  // Longest wait for one HTTP exchange, and for a queued (202) call to
  // complete; infinite: until it does (or `interrupted`).
  absl::Duration timeout = absl::InfiniteDuration();
  const std::atomic<bool>* interrupted = nullptr;
  // Called while a queued call is waited for, with the time waited so far
  // (for a progress line); and once with -1 when the wait is over.
  std::function<void(absl::Duration)> on_wait;
};

// Makes the remote client, InvalidArgument for a malformed URL. The
// `filemesh` program hands remote mode over to its `filemesh-remote` helper
// here (which links the HTTP and TLS libraries, so local runs do not load
// them); the helper and tests make a real client (remote.h).
using GatewayConnector =
    std::function<absl::StatusOr<std::unique_ptr<RemoteGateway>>(GatewayOptions options)>;

struct RunOptions {
  // When it becomes true (main sets it on SIGINT and SIGTERM), a running
  // search stops and Run returns kExitInterrupted.
  const std::atomic<bool>* interrupted = nullptr;
  // A search running this long shows its progress on `err`, when both `out`
  // and `err` are terminals.
  absl::Duration progress_after = absl::Seconds(1);
  // How --gateway is served; empty: remote mode is refused (exit 2).
  GatewayConnector connect_gateway;
};

// Runs the tool on `args` (without the program name), writing results to
// `out` and diagnostics to `err`. Returns the exit code.
int Run(const std::vector<std::string>& args, std::FILE* out, std::FILE* err,
        const RunOptions& options = {});

}  // namespace filemesh::cli

#endif  // FILEMESH_SRC_CLI_COMMANDS_H_
