#include "rpc/grpc_tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "filemesh/service/address.hpp"
#include "filemesh/service/log.hpp"
#include "service/tls_files.h"

namespace filemesh::internal {
namespace {

namespace tls = grpc::experimental;

// Refuses, after the CA has verified it, a client certificate that carries
// none of the allowed names (subject alternative names of any kind, or the
// subject's common name). Synchronous: a few string compares per handshake.
class AllowedPeersVerifier final : public tls::ExternalCertificateVerifier {
 public:
  explicit AllowedPeersVerifier(std::vector<std::string> allowed) : allowed_(std::move(allowed)) {}

  bool Verify(tls::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    std::vector<std::string> names;
    const auto add = [&names](const grpc::string_ref& ref) {
      std::string name(ref.data(), ref.size());
      if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end()) {
        names.push_back(std::move(name));
      }
    };
    for (const grpc::string_ref& name : request->dns_names()) add(name);
    for (const grpc::string_ref& name : request->uri_names()) add(name);
    for (const grpc::string_ref& name : request->email_names()) add(name);
    for (const grpc::string_ref& name : request->ip_names()) add(name);
    add(request->common_name());
    for (const std::string& name : names) {
      if (std::find(allowed_.begin(), allowed_.end(), name) != allowed_.end()) {
        *sync_status = grpc::Status::OK;
        return true;
      }
    }
    const std::string shown = names.empty() ? "(no names)" : absl::StrJoin(names, ",");
    LogEvent(LogLevel::kWarning, "tls_peer_refused",
             {{"transport", "grpc"}, {"peer_names", shown}, {"reason", "not an allowed peer"}});
    *sync_status =
        grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                     absl::StrCat("the client certificate (", shown, ") names no allowed peer"));
    return true;
  }

  void Cancel(tls::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  const std::vector<std::string> allowed_;
};

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
  if (!options.allowed_peers.empty()) {
    credentials.set_certificate_verifier(
        tls::ExternalCertificateVerifier::Create<AllowedPeersVerifier>(options.allowed_peers));
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
