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
#include "filemesh/v1/filemesh.pb.h"

namespace filemesh::cli {

// Exit codes of failures only remote mode has (docs/cli.md).
constexpr int kExitUnauthorized = 3;  // 401: no API key, or a wrong one
constexpr int kExitUnreachable = 4;   // no answer, or not a filemesh gateway

// A failure of remote mode, as the command reports it: one line for stderr
// ("filemesh: <title>: <detail>") and the exit code.
struct RemoteFailure {
  std::string line;
  int exit_code = 1;
};

// Why a remote call failed: a problem the gateway answered, or no usable
// answer at all. The status carries the failure (RemoteFailureOf).
RemoteFailure RemoteFailureOf(const absl::Status& status);

class GatewayClient {
 public:
  struct Options {
    std::string url;      // http://HOST:PORT or https://HOST:PORT, no path
    std::string api_key;  // sent as "Authorization: Bearer KEY" when set
    // Longest wait for one HTTP exchange, and for a queued (202) call to
    // complete; infinite: until it does (or `interrupted`).
    absl::Duration timeout = absl::InfiniteDuration();
    const std::atomic<bool>* interrupted = nullptr;
    // Called while a queued call is waited for, with the time waited so far
    // (for a progress line); and once with -1 when the wait is over.
    std::function<void(absl::Duration)> on_wait;
  };

  // InvalidArgument for a URL that is not http(s)://HOST[:PORT][/].
  static absl::StatusOr<std::unique_ptr<GatewayClient>> Create(Options options);
  ~GatewayClient();

  // GET /api/v1/files and /api/v1/search with the request's fields as query
  // parameters; a 202 is followed through its operation until it is done.
  absl::StatusOr<v1::ListResponse> List(const v1::ListRequest& request);
  absl::StatusOr<v1::SearchResponse> Search(const v1::SearchRequest& request);

 private:
  struct Impl;
  explicit GatewayClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace filemesh::cli

#endif  // FILEMESH_SRC_CLI_REMOTE_H_
