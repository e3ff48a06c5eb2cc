// TlsOptions: the certificates of one side of a TLS hop (gRPC, AMQP or
// HTTPS), as PEM files that are re-read when they change, so that a rotated
// certificate is used without a restart (docs/security.md).
//
//   filemesh::ServiceHostOptions options;
//   options.grpc_listen = "0.0.0.0:50051";
//   options.grpc_tls.cert_file = "/etc/filemesh/tls/mserv1.pem";
//   options.grpc_tls.key_file = "/etc/filemesh/tls/mserv1.key";
//   options.grpc_tls.ca_file = "/etc/filemesh/tls/clients-ca.pem";  // mutual TLS
//   options.grpc_tls.allowed_peers = {"gateway"};
//
// A server needs cert_file and key_file; with ca_file it also asks each
// caller for a certificate signed by that CA (and refuses one without, unless
// require_peer_certificate is false). A client needs ca_file to verify the
// server against (empty: the system's trusted CAs) and gives cert_file and
// key_file when the server wants a client certificate. The files are checked
// when the server or client starts: unreadable, unparsable, mismatched (key
// and certificate) or out-of-date files are an error naming the file.
#ifndef FILEMESH_SERVICE_TLS_HPP_
#define FILEMESH_SERVICE_TLS_HPP_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace filemesh {

struct TlsOptions {
  // This side's certificate chain (PEM, leaf first) and its private key.
  std::string cert_file;
  std::string key_file;
  // The CA certificates the peer's chain must lead to (PEM, one or more).
  std::string ca_file;
  // Servers with a ca_file: refuse a caller that presents no certificate
  // signed by it. False: ask for one, verify it when given, accept a caller
  // without (then only the network protects the service).
  bool require_peer_certificate = true;
  // Servers: names of which the caller's certificate must carry at least one
  // (a DNS, URI or e-mail subject alternative name, or the subject's common
  // name); empty: any certificate the CA signed. Needs a ca_file.
  std::vector<std::string> allowed_peers;
  // Clients: the name the server's certificate must carry when it is not the
  // target's host (for instance when the target is an IP address and the
  // certificate names the host). Empty: the target's host.
  std::string server_name;
  // How often the files are checked for a change (at least one second).
  absl::Duration reload_interval = absl::Seconds(1);

  // Whether any file is set: TLS is on.
  bool enabled() const { return !cert_file.empty() || !key_file.empty() || !ca_file.empty(); }
};

}  // namespace filemesh

#endif  // FILEMESH_SERVICE_TLS_HPP_
