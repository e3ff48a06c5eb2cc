#include "postgres/postgres_server.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "cleanup_watchdog.h"
#include "loopback_port.h"

#ifndef FILEMESH_POSTGRES_SERVER_SCRIPT
#error "FILEMESH_POSTGRES_SERVER_SCRIPT must name tests/postgres/postgres_server.sh"
#endif
#ifndef FILEMESH_TLS_CERTS_SCRIPT
#error "FILEMESH_TLS_CERTS_SCRIPT must name tests/tls/make_certs.sh"
#endif

namespace filemesh::testing {
namespace {

PostgresServer* g_shared = nullptr;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Tail(const std::string& path) {
  std::string all = Read(path);
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

}  // namespace

PostgresServer::PostgresServer(std::string dir, int port) : dir_(std::move(dir)), port_(port) {
  watchdog_fd_ =
      StartCleanupWatchdog("\"$0\" stop \"$1\" \"$2\" >/dev/null 2>&1; rm -rf \"$1\"",
                           {FILEMESH_POSTGRES_SERVER_SCRIPT, dir_, std::to_string(port_)});
}

PostgresServer::~PostgresServer() {
  if (!Run("stop")) ADD_FAILURE() << "cannot stop PostgreSQL:\n" << Tail(dir_ + "/script.log");
  const std::string rm = "rm -rf '" + dir_ + "'";
  if (std::system(rm.c_str()) != 0) ADD_FAILURE() << "could not remove " << dir_;
  DismissCleanupWatchdog(watchdog_fd_);
}

std::unique_ptr<PostgresServer> PostgresServer::Start(std::string* error) {
  // Another attempt on another port if one was taken meanwhile.
  for (int attempt = 0; attempt < 3; ++attempt) {
    char dir[] = "/tmp/filemesh-postgres-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
      *error = "mkdtemp failed";
      return nullptr;
    }
    std::unique_ptr<PostgresServer> server(new PostgresServer(dir, FreeLoopbackPort()));
    const std::string certs = server->tls_dir();
    const std::string make = std::string("'") + FILEMESH_TLS_CERTS_SCRIPT + "' '" + certs +
                             "' >>'" + dir + "/script.log' 2>&1 && mkdir '" + dir +
                             "/tls' && cp '" + certs + "/ca.pem' '" + certs + "/server.pem' '" +
                             certs + "/server.key' '" + dir + "/tls/'";
    if (std::system(make.c_str()) != 0) {
      *error = "cannot make the certificates:\n" + Tail(std::string(dir) + "/script.log");
      return nullptr;
    }
    if (server->Run("start") &&
        server->Run("psql", std::string("ALTER USER postgres PASSWORD '") + kPassword + "'")) {
      return server;
    }
    *error = "postgres_server.sh start failed:\n" + Tail(std::string(dir) + "/script.log");
  }
  return nullptr;
}

bool PostgresServer::Run(const std::string& action, const std::string& sql, std::string* output) {
  // Files of this call's own: tests may run statements from several threads.
  static std::atomic<int> calls{0};
  const std::string call = std::to_string(++calls);
  const std::string out = dir_ + "/script." + call + ".out";
  std::string command = std::string(FILEMESH_POSTGRES_SERVER_SCRIPT) + " " + action + " '" + dir_ +
                        "' " + std::to_string(port_);
  if (!sql.empty()) {
    // The SQL through a file: no quoting of it in the shell.
    const std::string file = dir_ + "/statement." + call + ".sql";
    std::ofstream(file) << sql;
    command += " \"$(cat '" + file + "')\"";
  }
  command += " >'" + out + "' 2>>'" + dir_ + "/script.log'; rc=$?; cat '" + out + "' >>'" + dir_ +
             "/script.log'; exit $rc";
  const int rc = std::system(command.c_str());
  if (output != nullptr) *output = Read(out);
  return rc == 0;
}

std::string PostgresServer::Url(const std::string& query, const std::string& host) const {
  std::string url = std::string("postgresql://postgres:") + kPassword + "@" + host + ":" +
                    std::to_string(port_) + "/postgres";
  if (!query.empty()) url += "?" + query;
  return url;
}

std::string PostgresServer::NewSchemaUrl(std::string* schema, const std::string& query) {
  static std::mt19937_64 random(std::random_device{}());
  char name[32];
  std::snprintf(name, sizeof(name), "test_%016llx", static_cast<unsigned long long>(random()));
  *schema = name;
  EXPECT_TRUE(Psql(std::string("CREATE SCHEMA ") + name));
  // libpq's options parameter, percent-encoded: "-c search_path=NAME".
  std::string url_query = std::string("options=-c%20search_path%3D") + name;
  if (!query.empty()) url_query += "&" + query;
  return Url(url_query);
}

bool PostgresServer::Psql(const std::string& sql, std::string* output) {
  const bool ok = Run("psql", sql, output);
  if (!ok) ADD_FAILURE() << "psql " << sql << " failed:\n" << Tail(dir_ + "/script.log");
  return ok;
}

bool PostgresServer::CrashRestart() {
  const bool ok = Run("crash-restart");
  if (!ok) ADD_FAILURE() << "crash-restart failed:\n" << Tail(dir_ + "/script.log");
  return ok;
}

PostgresServer* SharedPostgres() {
  if (g_shared == nullptr) {
    std::string error;
    g_shared = PostgresServer::Start(&error).release();
    if (g_shared == nullptr) ADD_FAILURE() << "cannot start PostgreSQL: " << error;
  }
  return g_shared;
}

void SharedPostgresEnvironment::TearDown() {
  delete g_shared;
  g_shared = nullptr;
}

}  // namespace filemesh::testing
