// A private PostgreSQL server for a test binary (tests/postgres/
// postgres_server.sh): its own temporary directory and loopback port, TLS
// beside plain TCP (certificates from tests/tls/make_certs.sh), and a
// password for the superuser over TCP. Stopped, and its directory removed,
// when the object dies; a watchdog does the same if the test binary dies
// first.

#ifndef FILEMESH_TESTS_POSTGRES_POSTGRES_SERVER_H_
#define FILEMESH_TESTS_POSTGRES_POSTGRES_SERVER_H_

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace filemesh::testing {

class PostgresServer {
 public:
  // The superuser's password over TCP.
  static constexpr char kPassword[] = "filemesh-test-password";

  // Starts a server; null, with `error` set, if it would not start.
  static std::unique_ptr<PostgresServer> Start(std::string* error);
  ~PostgresServer();

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // The directory of the test certificates (ca.pem, other-ca.pem, ...).
  std::string tls_dir() const { return dir_ + "/certs"; }

  // "postgresql://postgres:PASSWORD@HOST:PORT/postgres?QUERY" ("127.0.0.1"
  // unless `host` says otherwise).
  std::string Url(const std::string& query = "", const std::string& host = "127.0.0.1") const;
  // A schema of its own (made here) and the URL whose connections use it:
  // tests sharing the server do not see each other's tables.
  std::string NewSchemaUrl(std::string* schema, const std::string& query = "");

  // Runs SQL as the superuser; false (and a test failure) if it fails. With
  // `output`, what it printed (unaligned, tuples only).
  bool Psql(const std::string& sql, std::string* output = nullptr);
  // Stops the server as a crash would (every connection cut) and starts it
  // again on the same port.
  bool CrashRestart();

 private:
  PostgresServer(std::string dir, int port);
  bool Run(const std::string& action, const std::string& sql = "", std::string* output = nullptr);

  std::string dir_;
  int port_;
  int watchdog_fd_ = -1;
};

// The binary's shared server, started on first use; null (with a test
// failure) if it would not start. Stopped by SharedPostgresEnvironment:
//   const auto* const kPostgres =
//       ::testing::AddGlobalTestEnvironment(new SharedPostgresEnvironment);
PostgresServer* SharedPostgres();

class SharedPostgresEnvironment : public ::testing::Environment {
 public:
  void TearDown() override;
};

}  // namespace filemesh::testing

#endif  // FILEMESH_TESTS_POSTGRES_POSTGRES_SERVER_H_
