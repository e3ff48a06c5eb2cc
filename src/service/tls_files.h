// Checks of TlsOptions (filemesh/service/tls.hpp) before a server or client
// starts with them: an operator's mistake (a missing file, a key that is not
// the certificate's, a certificate out of date) is an error that names the
// file at start, not a handshake failure on every connection later.

#ifndef FILEMESH_SRC_SERVICE_TLS_FILES_H_
#define FILEMESH_SRC_SERVICE_TLS_FILES_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "filemesh/service/tls.hpp"

namespace filemesh::internal {

enum class TlsRole { kServer, kClient };

// InvalidArgument for: a server without both a certificate and a key; a client with only one
// of them; allowed_peers without a ca_file; a reload_interval under one
// second. InvalidArgument for a file that cannot be read or holds no PEM
// certificate (or key), and for a key that does not match the certificate;
// FailedPrecondition for a certificate that has expired or is not valid yet
// (with its dates). OK for options that are not enabled().
absl::Status CheckTlsOptions(const TlsOptions& options, TlsRole role);

// The reload interval in whole seconds, at least one.
unsigned ReloadSeconds(const TlsOptions& options);

// The subject's common name of the first certificate in `pem_file`; empty
// when it has none or cannot be read.
std::string CertificateCommonName(const std::string& pem_file);

// The subject and the validity of the first certificate in `pem_file`, for
// logs: "CN=mserv1 valid until 2027-12-06T10:00:00Z". Empty when it cannot be
// read.
std::string DescribeCertificate(const std::string& pem_file);

}  // namespace filemesh::internal

#endif  // FILEMESH_SRC_SERVICE_TLS_FILES_H_
