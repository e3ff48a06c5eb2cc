#include "service/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

namespace filemesh::internal {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Certificate = std::unique_ptr<X509, X509Free>;
using PrivateKey = std::unique_ptr<EVP_PKEY, KeyFree>;

// The last OpenSSL error of this thread as text (and the queue cleared).
std::string OpenSslError() {
  const unsigned long code = ERR_peek_last_error();  // NOLINT(google-runtime-int): OpenSSL's type
  ERR_clear_error();
  if (code == 0) return "no PEM data";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : absl::StrCat("OpenSSL error ", code);
}

// Never prompts on a terminal for the passphrase of an encrypted key.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return 0; }

absl::Status Unreadable(absl::string_view what, const std::string& file, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(what, " \"", file, "\" cannot be used: ", why));
}

absl::StatusOr<Bio> Open(absl::string_view what, const std::string& file) {
  Bio bio(BIO_new_file(file.c_str(), "r"));
  if (bio == nullptr) {
    ERR_clear_error();
    return Unreadable(what, file, "it cannot be opened for reading");
  }
  return bio;
}

// The first certificate of a PEM file (the leaf of a chain).
absl::StatusOr<Certificate> ReadCertificate(absl::string_view what, const std::string& file) {
  absl::StatusOr<Bio> bio = Open(what, file);
  if (!bio.ok()) return bio.status();
  Certificate cert(PEM_read_bio_X509(bio->get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) {
    return Unreadable(what, file, absl::StrCat("no PEM certificate (", OpenSslError(), ")"));
  }
  return cert;
}

absl::Time AsTime(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return absl::InfinitePast();
  return absl::FromTM(tm, absl::UTCTimeZone());
}

std::string Subject(X509* cert) {
  char buffer[256];
  X509_NAME_oneline(X509_get_subject_name(cert), buffer, sizeof(buffer));
  return buffer;
}

std::string Rfc3339(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

absl::Status CheckDates(absl::string_view what, const std::string& file, X509* cert) {
  const absl::Time now = absl::Now();
  const absl::Time not_before = AsTime(X509_get0_notBefore(cert));
  const absl::Time not_after = AsTime(X509_get0_notAfter(cert));
  if (now > not_after) {
    return absl::FailedPreconditionError(absl::StrCat(what, " \"", file, "\" (", Subject(cert),
                                                      ") expired at ", Rfc3339(not_after)));
  }
  if (now < not_before) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " \"", file, "\" (", Subject(cert), ") is not valid before ", Rfc3339(not_before)));
  }
  return absl::OkStatus();
}

absl::Status CheckIdentity(const TlsOptions& options) {
  absl::StatusOr<Certificate> cert = ReadCertificate("certificate", options.cert_file);
  if (!cert.ok()) return cert.status();
  if (absl::Status dates = CheckDates("certificate", options.cert_file, cert->get()); !dates.ok()) {
    return dates;
  }
  absl::StatusOr<Bio> bio = Open("private key", options.key_file);
  if (!bio.ok()) return bio.status();
  PrivateKey key(PEM_read_bio_PrivateKey(bio->get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return Unreadable("private key", options.key_file,
                      absl::StrCat("no unencrypted PEM private key (", OpenSslError(), ")"));
  }
  if (X509_check_private_key(cert->get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("private key \"", options.key_file,
                                                   "\" is not the key of certificate \"",
                                                   options.cert_file, "\""));
  }
  return absl::OkStatus();
}

absl::Status CheckCa(const std::string& file) {
  absl::StatusOr<Certificate> first = ReadCertificate("CA file", file);
  return first.ok() ? absl::OkStatus() : first.status();
}

}  // namespace

absl::Status CheckTlsOptions(const TlsOptions& options, TlsRole role) {
  if (!options.enabled()) return absl::OkStatus();
  const bool has_cert = !options.cert_file.empty();
  const bool has_key = !options.key_file.empty();
  if (role == TlsRole::kServer && (!has_cert || !has_key)) {
    return absl::InvalidArgumentError(
        "TLS for a server needs both a certificate file and its private key file");
  }
  if (has_cert != has_key) {
    return absl::InvalidArgumentError(
        "a client certificate needs its private key and a key its certificate: give both or "
        "neither");
  }
  if (!options.allowed_peers.empty() && options.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "allowed peers are names in client certificates: they need a CA file to verify those "
        "certificates with");
  }
  if (options.reload_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the TLS reload interval must be one second or more, not ",
                     absl::FormatDuration(options.reload_interval)));
  }
  if (has_cert) {
    if (absl::Status identity = CheckIdentity(options); !identity.ok()) return identity;
  }
  if (!options.ca_file.empty()) {
    if (absl::Status ca = CheckCa(options.ca_file); !ca.ok()) return ca;
  }
  return absl::OkStatus();
}

unsigned ReloadSeconds(const TlsOptions& options) {
  const int64_t seconds = absl::ToInt64Seconds(options.reload_interval);
  return seconds < 1 ? 1u : static_cast<unsigned>(std::min<int64_t>(seconds, 86400));
}

std::string CertificateCommonName(const std::string& pem_file) {
  absl::StatusOr<Certificate> cert = ReadCertificate("certificate", pem_file);
  if (!cert.ok()) return "";
  char buffer[256];
  const int length = X509_NAME_get_text_by_NID(X509_get_subject_name(cert->get()), NID_commonName,
                                               buffer, sizeof(buffer));
  return length > 0 ? std::string(buffer, static_cast<size_t>(length)) : "";
}

std::string DescribeCertificate(const std::string& pem_file) {
  absl::StatusOr<Certificate> cert = ReadCertificate("certificate", pem_file);
  if (!cert.ok()) return "";
  return absl::StrCat(Subject(cert->get()), " valid until ",
                      Rfc3339(AsTime(X509_get0_notAfter(cert->get()))));
}

}  // namespace filemesh::internal
