#include "rest/server_tls.h"

#include <openssl/ssl.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "filemesh/service/log.hpp"
#include "service/tls_files.h"

namespace filemesh::internal {
namespace ssl = boost::asio::ssl;

absl::StatusOr<std::unique_ptr<ServerTlsContext>> ServerTlsContext::Create(
    const TlsOptions& options) {
  if (absl::Status checked = CheckTlsOptions(options, TlsRole::kServer); !checked.ok()) {
    return checked;
  }
  if (!options.allowed_peers.empty()) {
    return absl::InvalidArgumentError(
        "allowed_peers is not supported by the HTTP server: give the clients' CA as ca_file");
  }
  std::unique_ptr<ServerTlsContext> source(new ServerTlsContext(options));
  const Stamps stamps = source->Stamp();
  absl::StatusOr<std::shared_ptr<ssl::context>> context = source->Make();
  if (!context.ok()) return context.status();
  MutexLock lock(&source->mu_);
  source->current_ = *std::move(context);
  source->stamps_ = stamps;
  source->next_check_ =
      std::chrono::steady_clock::now() + std::chrono::seconds(ReloadSeconds(source->options_));
  return source;
}

ServerTlsContext::Stamps ServerTlsContext::Stamp() const {
  return {FileStamp::Of(options_.cert_file), FileStamp::Of(options_.key_file),
          FileStamp::Of(options_.ca_file)};
}

absl::StatusOr<std::shared_ptr<ssl::context>> ServerTlsContext::Make() const {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  // TLS 1.2 and 1.3 only; OpenSSL 3's default cipher lists for them.
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                       ssl::context::single_dh_use);
  boost::system::error_code ec;
  const auto failed = [&ec](const std::string& what, const std::string& file) {
    return absl::InvalidArgumentError(
        absl::StrCat("HTTPS ", what, " \"", file, "\" cannot be used: ", ec.message()));
  };
  context->use_certificate_chain_file(options_.cert_file, ec);
  if (ec) return failed("certificate", options_.cert_file);
  context->use_private_key_file(options_.key_file, ssl::context::pem, ec);
  if (ec) return failed("key", options_.key_file);
  if (SSL_CTX_check_private_key(native) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("HTTPS key \"", options_.key_file,
                                                   "\" is not the key of certificate \"",
                                                   options_.cert_file, "\""));
  }
  if (!options_.ca_file.empty()) {
    context->load_verify_file(options_.ca_file, ec);
    if (ec) return failed("client CA", options_.ca_file);
    context->set_verify_mode(options_.require_peer_certificate
                                 ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                                 : ssl::verify_peer);
  }
  return context;
}

std::shared_ptr<ssl::context> ServerTlsContext::Current() {
  MutexLock lock(&mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return current_;
  next_check_ = now + std::chrono::seconds(ReloadSeconds(options_));
  const Stamps stamps = Stamp();
  if (stamps == stamps_) return current_;
  absl::StatusOr<std::shared_ptr<ssl::context>> context = Make();
  if (!context.ok()) {
    LogEvent(LogLevel::kWarning, "tls_reload_failed",
             {{"hop", "https"}, {"error", std::string(context.status().message())}});
    return current_;
  }
  current_ = *std::move(context);
  stamps_ = stamps;
  LogEvent("tls_reloaded",
           {{"hop", "https"}, {"certificate", DescribeCertificate(options_.cert_file)}});
  return current_;
}

}  // namespace filemesh::internal
