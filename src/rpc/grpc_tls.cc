#include "rpc/grpc_tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "filemesh/service/address.hpp"
#include "filemesh/service/log.hpp"
#include "service/tls_files.h"

namespace filemesh::internal {
namespace {

namespace tls = grpc::experimental;

// The provider of the files TLS is on with ("" for the ones not given).
std::shared_ptr<tls::FileWatcherCertificateProvider> WatchFiles(const TlsOptions& options) {
  return std::make_shared<tls::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, options.ca_file, ReloadSeconds(options));
}

const char* ClientCertificatePolicy(const TlsOptions& options) {
  if (options.ca_file.empty()) return "not_asked";
  return options.require_peer_certificate ? "required" : "optional";
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const std::string& listen, const TlsOptions& options, bool insecure) {
  if (!options.enabled()) {
    if (!IsLoopbackListenAddress(listen)) {
      if (!insecure) {
        return absl::InvalidArgumentError(absl::StrCat(
            "gRPC on \"", listen,
            "\" without TLS would let anyone on the network call the service: give it a "
            "certificate and key, listen on loopback, or allow plain text explicitly (insecure)"));
      }
      LogEvent(LogLevel::kWarning, "grpc_insecure",
               {{"address", listen},
                {"reason", "plain text beyond loopback: anyone who reaches the port may call"}});
    }
    return grpc::InsecureServerCredentials();
  }
  if (absl::Status check = CheckTlsOptions(options, TlsRole::kServer); !check.ok()) return check;
  tls::TlsServerCredentialsOptions credentials(WatchFiles(options));
  credentials.watch_identity_key_cert_pairs();
  if (options.ca_file.empty()) {
    credentials.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    credentials.watch_root_certs();
    credentials.set_cert_request_type(
        options.require_peer_certificate
            ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  LogEvent("grpc_tls", {{"address", listen},
                        {"certificate", DescribeCertificate(options.cert_file)},
                        {"client_certificates", ClientCertificatePolicy(options)},
                        {"allowed_peers", absl::StrJoin(options.allowed_peers, ",")}});
  return tls::TlsServerCredentials(credentials);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> GrpcChannelCredentials(
    const TlsOptions& options) {
  if (!options.enabled()) return grpc::InsecureChannelCredentials();
  if (absl::Status check = CheckTlsOptions(options, TlsRole::kClient); !check.ok()) return check;
  tls::TlsChannelCredentialsOptions credentials;
  credentials.set_certificate_provider(WatchFiles(options));
  if (!options.ca_file.empty()) credentials.watch_root_certs();
  if (!options.cert_file.empty()) credentials.watch_identity_key_cert_pairs();
  credentials.set_verify_server_certs(true);
  // The server's certificate must name the host called (or server_name).
  credentials.set_certificate_verifier(std::make_shared<tls::HostNameCertificateVerifier>());
  return tls::TlsCredentials(credentials);
}

}  // namespace filemesh::internal
