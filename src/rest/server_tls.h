// The TLS side of HttpServer: an SSL context made from TlsOptions' PEM files
// and made again when one of them changes, so that a rotated certificate is
// served to the next connection without a restart.

#ifndef FILEMESH_SRC_REST_SERVER_TLS_H_
#define FILEMESH_SRC_REST_SERVER_TLS_H_

#include <array>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "base/file_stamp.h"
#include "filemesh/internal/mutex.hpp"
#include "filemesh/service/tls.hpp"

namespace filemesh::internal {

class ServerTlsContext {
 public:
  // Checks the files (CheckTlsOptions, as a server) and makes the first
  // context: TLS 1.2 or later, the certificate chain and key, and with a
  // ca_file a client certificate asked for (and required when
  // require_peer_certificate).
  static absl::StatusOr<std::unique_ptr<ServerTlsContext>> Create(const TlsOptions& options);

  // The context a new connection uses. At most once per reload_interval the
  // files' inode, size and modification time are compared with those the
  // context was made from; when one changed a new context is made (a
  // certificate and key that do not go together yet, as in the middle of a
  // rotation, keep the old context and are tried again at the next
  // interval; logged as event=tls_reload_failed). Connections made before
  // keep the context they began with.
  std::shared_ptr<boost::asio::ssl::context> Current();

 private:
  using Stamps = std::array<FileStamp, 3>;  // cert, key, ca

  explicit ServerTlsContext(const TlsOptions& options) : options_(options) {}
  Stamps Stamp() const;
  absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> Make() const;

  const TlsOptions options_;
  Mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_ ABSL_GUARDED_BY(mu_);
  Stamps stamps_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point next_check_ ABSL_GUARDED_BY(mu_);
};

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_REST_SERVER_TLS_H_
