// Certificates for the TLS tests, made once per test binary by
// tests/tls/make_certs.sh (the openssl command) in a temporary directory.
#ifndef FILEMESH_TESTS_TLS_TEST_SUPPORT_H_
#define FILEMESH_TESTS_TLS_TEST_SUPPORT_H_

#include <openssl/crypto.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "filemesh/service/tls.hpp"
#include "gtest/gtest.h"

namespace filemesh::testing {

// Keeps OpenSSL from cleaning up at exit (OPENSSL_INIT_NO_ATEXIT), before
// anything in the binary starts it. gRPC's event-engine threads may still
// be running, or exit, after exit()'s handlers: had OpenSSL's handler run,
// the per-thread state such a thread made (its error queue, its random
// generators) would lose the thread-exit hook that frees it, and
// LeakSanitizer would report it (seen about once in 30 runs of a gRPC TLS
// test under ASan). Register in a test file with
//   const auto* const kOpenSsl =
//       ::testing::AddGlobalTestEnvironment(new OpenSslWithoutAtExitEnvironment);
class OpenSslWithoutAtExitEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_EQ(OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr), 1); }
};

class TestCertificates {
 public:
  // The directory of make_certs.sh's files, made on first use and removed
  // when the binary exits; aborts the binary when the script fails.
  static const std::string& Dir() {
    static const std::string* const dir = [] {
      char name[] = "/tmp/filemesh-tls-XXXXXX";
      if (mkdtemp(name) == nullptr) std::abort();
      const std::string command =
          std::string("bash ") + FILEMESH_TLS_CERTS_SCRIPT + " " + name + " >/dev/null";
      if (std::system(command.c_str()) != 0) {
        std::fprintf(stderr, "make_certs.sh failed\n");
        std::abort();
      }
      auto* made = new std::string(name);
      Made() = made;
      std::atexit([] {
        std::error_code ignored;
        std::filesystem::remove_all(*Made(), ignored);
      });
      return made;
    }();
    return *dir;
  }
  static const std::string*& Made() {
    static const std::string* made = nullptr;
    return made;
  }
  static std::string Pem(const std::string& name) { return Dir() + "/" + name + ".pem"; }
  static std::string Key(const std::string& name) { return Dir() + "/" + name + ".key"; }

  // A server's options: NAME's certificate and key, and a CA to verify
  // clients with ("" for none).
  static TlsOptions Server(const std::string& name = "server", const std::string& ca = "ca") {
    TlsOptions tls;
    tls.cert_file = Pem(name);
    tls.key_file = Key(name);
    if (!ca.empty()) tls.ca_file = Pem(ca);
    return tls;
  }
  // A client's options: the CA it trusts and its certificate ("" for none).
  static TlsOptions Client(const std::string& ca = "ca", const std::string& name = "client") {
    TlsOptions tls;
    if (!ca.empty()) tls.ca_file = Pem(ca);
    if (!name.empty()) {
      tls.cert_file = Pem(name);
      tls.key_file = Key(name);
    }
    return tls;
  }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }
  // Replaces `to` with a copy of `from` in one step (a new file renamed over
  // it), as an operator's deployment tool would.
  static void Replace(const std::string& from, const std::string& to) {
    const std::string temporary = to + ".new";
    std::filesystem::copy_file(from, temporary, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(temporary, to);
  }
};

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_TLS_TEST_SUPPORT_H_
