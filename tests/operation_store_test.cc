#include "rest/operation_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "loopback_port.h"
#include "postgres/postgres_server.h"
#include "rest/postgres_operations.h"
#include "rest/sqlite_operations.h"

namespace filemesh::internal {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

const auto* const kPostgres =
    ::testing::AddGlobalTestEnvironment(new testing::SharedPostgresEnvironment);

// The contract, on every backend (GetParam(): "memory" or "sqlite").
class OperationStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/filemesh-ops-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/operations.db";
  }
  void TearDown() override {
    const std::string rm = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(rm.c_str()), 0);
  }

  // Where the store lives: "" (memory), the file, or a schema of its own on
  // the shared PostgreSQL server (the same for every Open of a test).
  std::string Where() {
    if (GetParam() == "memory") return "";
    if (GetParam() == "sqlite") return path_;
    if (postgres_url_.empty()) {
      testing::PostgresServer* server = testing::SharedPostgres();
      if (server == nullptr) return "postgresql://no-server";
      postgres_url_ = server->NewSchemaUrl(&schema_);
    }
    return postgres_url_;
  }

  std::unique_ptr<OperationStore> Open(OperationLimits limits = {}) {
    auto store = OpenOperationStore(Where(), limits);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return nullptr;
    EXPECT_EQ((*store)->backend(), GetParam());
    return *std::move(store);
  }

  static StoredOperation Pending(std::string call_id, std::string path = "docs") {
    StoredOperation op;
    op.call_id = std::move(call_id);
    op.kind = 1;
    op.served_by = 2;
    op.path = std::move(path);
    op.owner = "gateway-1";
    return op;
  }

  std::string dir_;
  std::string path_;
  std::string postgres_url_;
  std::string schema_;
};

INSTANTIATE_TEST_SUITE_P(Backends, OperationStoreTest,
                         ::testing::Values("memory", "sqlite", "postgresql"),
                         [](const auto& backend) { return backend.param; });

// What only a store outside the process can do.
class DurableOperationStoreTest : public OperationStoreTest {};
INSTANTIATE_TEST_SUITE_P(Durable, DurableOperationStoreTest,
                         ::testing::Values("sqlite", "postgresql"),
                         [](const auto& backend) { return backend.param; });

// What only a file can do.
class SqliteOperationsTest : public OperationStoreTest {};
INSTANTIATE_TEST_SUITE_P(File, SqliteOperationsTest, ::testing::Values("sqlite"),
                         [](const auto& backend) { return backend.param; });

TEST_P(OperationStoreTest, AnOperationIsPendingThenDoneOnce) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::string> id = store->Add(Pending("call-1", std::string("a\0b\xff", 4)), kT0);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->size(), 32u);

  auto found = store->Find(*id, kT0 + absl::Seconds(1));
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->call_id, "call-1");
  EXPECT_EQ((*found)->kind, 1);
  EXPECT_EQ((*found)->served_by, 2);
  EXPECT_EQ((*found)->path, std::string("a\0b\xff", 4)) << "paths are bytes";
  EXPECT_EQ((*found)->owner, "gateway-1");
  EXPECT_EQ((*found)->create_time, kT0);
  EXPECT_FALSE((*found)->done);

  // The first completion counts; a redelivered reply changes nothing.
  EXPECT_EQ(store->Complete("call-1", absl::OkStatus(), "answer", kT0 + absl::Seconds(2)).value(),
            true);
  EXPECT_EQ(store->Complete("call-1", absl::OkStatus(), "other", kT0 + absl::Seconds(3)).value(),
            false);
  EXPECT_EQ(store->Complete("no-such-call", absl::OkStatus(), "x", kT0).value(), false);
  found = store->Find(*id, kT0 + absl::Seconds(4));
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_TRUE((*found)->done);
  EXPECT_TRUE((*found)->error.ok());
  EXPECT_EQ((*found)->response, "answer");
  EXPECT_EQ((*found)->update_time, kT0 + absl::Seconds(2));

  auto unknown = store->Find("0123456789abcdef0123456789abcdef", kT0);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
}

TEST_P(OperationStoreTest, AFailedCallKeepsItsStatus) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::string id = store->Add(Pending("c"), kT0).value();
  ASSERT_TRUE(store->Complete("c", absl::NotFoundError("no such directory"), "ignored", kT0).ok());
  auto found = store->Find(id, kT0);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_TRUE((*found)->done);
  EXPECT_EQ((*found)->error, absl::NotFoundError("no such directory"));
  EXPECT_EQ((*found)->response, "");
}

TEST_P(DurableOperationStoreTest, OperationsOutliveTheProcessThatMadeThem) {
  std::string id;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    id = store->Add(Pending("c"), kT0).value();
  }
  // Another store on the same file (another gateway, or this one restarted)
  // completes it; a third reads it.
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(store->Complete("c", absl::OkStatus(), "late answer", kT0).value());
  }
  auto a = Open();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto found = b->Find(id, kT0);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->response, "late answer");
  // Two connections at once: one writes, the other sees it.
  std::string second = a->Add(Pending("d"), kT0).value();
  EXPECT_TRUE(b->Complete("d", absl::OkStatus(), "from b", kT0).value());
  EXPECT_EQ(a->Find(second, kT0).value()->response, "from b");
}

TEST_P(OperationStoreTest, OperationsExpireAfterTheirTtl) {
  OperationLimits limits;
  limits.ttl = absl::Minutes(10);
  auto store = Open(limits);
  ASSERT_NE(store, nullptr);
  std::string id = store->Add(Pending("c"), kT0).value();
  EXPECT_TRUE(store->Find(id, kT0 + absl::Minutes(10) - absl::Seconds(1)).value().has_value());
  EXPECT_FALSE(store->Find(id, kT0 + absl::Minutes(10)).value().has_value());
  // An expired operation takes no completion, and goes at the next write.
  EXPECT_FALSE(store->Complete("c", absl::OkStatus(), "x", kT0 + absl::Minutes(11)).value());
  EXPECT_EQ(store->Count().value(), 0u);
  EXPECT_EQ(store->evicted(), 0u) << "expiring is not evicting";
}

TEST_P(OperationStoreTest, TheOldestGoPastTheCountOrBytes) {
  OperationLimits limits;
  limits.capacity = 3;
  limits.max_bytes = 100;
  auto store = Open(limits);
  ASSERT_NE(store, nullptr);
  std::string ids[5];
  for (int i = 0; i < 5; ++i) {
    ids[i] = store->Add(Pending("c" + std::to_string(i)), kT0 + absl::Seconds(i)).value();
  }
  EXPECT_EQ(store->Count().value(), 3u);
  EXPECT_EQ(store->evicted(), 2u);
  EXPECT_FALSE(store->Find(ids[1], kT0).value().has_value());
  EXPECT_TRUE(store->Find(ids[2], kT0).value().has_value());
  // 60 + 60 bytes of answers pass 100: the oldest (c2) goes.
  EXPECT_TRUE(store->Complete("c3", absl::OkStatus(), std::string(60, 'x'), kT0).value());
  EXPECT_TRUE(store->Complete("c4", absl::OkStatus(), std::string(60, 'y'), kT0).value());
  EXPECT_FALSE(store->Find(ids[2], kT0).value().has_value());
  EXPECT_FALSE(store->Find(ids[3], kT0).value().has_value()) << "c3 is older than c4";
  EXPECT_EQ(store->Find(ids[4], kT0).value()->response, std::string(60, 'y'));
  EXPECT_EQ(store->evicted(), 4u);
}

TEST_P(SqliteOperationsTest, AFileOfAnotherKindIsRefusedAndLeftAlone) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE mine (x); INSERT INTO mine VALUES (42);", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = SqliteOperations::Open(path_, {});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find("schema version 1"), absl::string_view::npos);
  // Not rewritten.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  int rows = -1;
  sqlite3_exec(
      db, "SELECT COUNT(*) FROM mine",
      [](void* out, int, char** values, char**) {
        *static_cast<int*>(out) = std::atoi(values[0]);
        return 0;
      },
      &rows, nullptr);
  sqlite3_close(db);
  EXPECT_EQ(rows, 1);

  // Not a database at all.
  const std::string junk = dir_ + "/junk.db";
  std::ofstream(junk) << std::string(4096, 'j');
  auto not_db = SqliteOperations::Open(junk, {});
  EXPECT_FALSE(not_db.ok());
  // A folder that does not exist.
  EXPECT_FALSE(SqliteOperations::Open(dir_ + "/no/such/dir/ops.db", {}).ok());
  // Bounds must be positive.
  OperationLimits zero;
  zero.capacity = 0;
  EXPECT_EQ(SqliteOperations::Open(dir_ + "/z.db", zero).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenOperationStore("", zero).status().code(), absl::StatusCode::kInvalidArgument);
  // A PostgreSQL URL is never taken for a file name.
  absl::StatusOr<std::unique_ptr<OperationStore>> nobody =
      OpenOperationStore("postgresql://127.0.0.1:1/ops?connect_timeout=2", {});
  EXPECT_EQ(nobody.status().code(), absl::StatusCode::kUnavailable) << nobody.status();
  EXPECT_THAT(std::string(nobody.status().message()),
              ::testing::HasSubstr("cannot connect to the operations database"));
}

// What only PostgreSQL does: replicas on one database, TLS, passwords, a
// server that restarts or never answers.
class PostgresOperationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::SharedPostgres();
    ASSERT_NE(server_, nullptr);
    url_ = server_->NewSchemaUrl(&schema_);
  }

  static StoredOperation Pending(std::string call_id) {
    StoredOperation op;
    op.call_id = std::move(call_id);
    op.path = "docs";
    op.owner = "gateway-1";
    return op;
  }

  testing::PostgresServer* server_ = nullptr;
  std::string url_;
  std::string schema_;
};

TEST_F(PostgresOperationsTest, ReplicasShareOperationsAndCompleteEachOnce) {
  auto a = PostgresOperations::Open(url_, {});
  auto b = PostgresOperations::Open(url_, {});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  constexpr int kOperations = 40;
  std::vector<std::string> ids;
  for (int i = 0; i < kOperations; ++i) {
    ids.push_back((*a)->Add(Pending("call-" + std::to_string(i)), kT0).value());
  }
  EXPECT_FALSE((*b)->Find(ids[0], kT0).value().value().done) << "b sees what a made";
  // Both replicas take every reply at once (a reply redelivered to each):
  // each completion is written by one of them only.
  int wrote[2] = {0, 0};
  auto complete = [&](PostgresOperations* store, int who) {
    for (int i = 0; i < kOperations; ++i) {
      absl::StatusOr<bool> done = store->Complete("call-" + std::to_string(i), absl::OkStatus(),
                                                  "from " + std::to_string(who), kT0);
      ASSERT_TRUE(done.ok()) << done.status();
      wrote[who] += *done ? 1 : 0;
    }
  };
  std::thread first(complete, a->get(), 0);
  std::thread second(complete, b->get(), 1);
  first.join();
  second.join();
  EXPECT_EQ(wrote[0] + wrote[1], kOperations);
  int answered_by[2] = {0, 0};
  for (const std::string& id : ids) {
    std::optional<StoredOperation> op = (*a)->Find(id, kT0).value();
    ASSERT_TRUE(op.has_value() && op->done);
    ASSERT_TRUE(op->response == "from 0" || op->response == "from 1") << op->response;
    ++answered_by[op->response == "from 1" ? 1 : 0];
  }
  EXPECT_EQ(answered_by[0], wrote[0]) << "the stored answer is the one whose write counted";
  EXPECT_EQ(answered_by[1], wrote[1]);
}

TEST_F(PostgresOperationsTest, ReplicasStartingTogetherMakeTheTablesOnce) {
  std::vector<std::thread> replicas;
  std::vector<absl::Status> opened(4);
  for (size_t i = 0; i < opened.size(); ++i) {
    replicas.emplace_back([&, i] { opened[i] = PostgresOperations::Open(url_, {}).status(); });
  }
  for (std::thread& replica : replicas) replica.join();
  for (const absl::Status& status : opened) EXPECT_TRUE(status.ok()) << status;
  std::string versions;
  ASSERT_TRUE(server_->Psql("SELECT COUNT(*) FROM " + schema_ + ".filemesh_schema", &versions));
  EXPECT_EQ(versions, "1\n");
}

TEST_F(PostgresOperationsTest, AStoreCarriesOnAfterTheServerRestarts) {
  auto store = PostgresOperations::Open(url_, {});
  ASSERT_TRUE(store.ok()) << store.status();
  std::string id = (*store)->Add(Pending("c"), kT0).value();
  ASSERT_TRUE(server_->CrashRestart());
  // The first call finds its connection cut, connects again and is tried
  // once more: the caller sees no error.
  absl::StatusOr<std::optional<StoredOperation>> found = (*store)->Find(id, kT0);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found->has_value());
  EXPECT_EQ((*store)->reconnects(), 1u);
  EXPECT_TRUE((*store)->Complete("c", absl::OkStatus(), "after", kT0).value());
  EXPECT_EQ((*store)->reconnects(), 1u);
}

TEST_F(PostgresOperationsTest, VerifyFullTakesTheServersCaAndNoOther) {
  std::string schema;
  const std::string url = server_->NewSchemaUrl(
      &schema, "sslmode=verify-full&sslrootcert=" + server_->tls_dir() + "/ca.pem");
  auto store = PostgresOperations::Open(url, {});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Add(Pending("c"), kT0).ok());
  // Over TLS indeed: the server's view of the store's connection.
  std::string ssl;
  ASSERT_TRUE(
      server_->Psql("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                    "WHERE a.application_name = 'filemesh-gateway'",
                    &ssl));
  EXPECT_EQ(ssl, "t\n");

  auto other = PostgresOperations::Open(
      server_->NewSchemaUrl(
          &schema, "sslmode=verify-full&sslrootcert=" + server_->tls_dir() + "/other-ca.pem"),
      {});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(other.status().message()),
              ::testing::HasSubstr("certificate verify failed"));
}

TEST_F(PostgresOperationsTest, AWrongPasswordIsAnErrorThatDoesNotShowIt) {
  std::string url = url_;
  url.replace(url.find(testing::PostgresServer::kPassword),
              std::string(testing::PostgresServer::kPassword).size(), "not-the-pass-word");
  auto store = PostgresOperations::Open(url, {});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  const std::string message(store.status().message());
  EXPECT_THAT(message, ::testing::HasSubstr("password authentication failed"));
  EXPECT_THAT(message, ::testing::HasSubstr("postgres:***@127.0.0.1"));
  EXPECT_THAT(message, ::testing::Not(::testing::HasSubstr("not-the-pass-word")));
  // In the query, too.
  auto query = PostgresOperations::Open(url_ + "&password=not-the-pass-word", {});
  ASSERT_FALSE(query.ok());
  EXPECT_THAT(std::string(query.status().message()),
              ::testing::Not(::testing::HasSubstr("not-the-pass-word")));
}

TEST_F(PostgresOperationsTest, APasswordFileKeepsThePasswordOutOfTheUrl) {
  // libpq's passfile (docs/deploy.md): host:port:database:user:password,
  // readable by its owner only.
  char dir[] = "/tmp/filemesh-pgpass-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string passfile = std::string(dir) + "/pgpass";
  std::ofstream(passfile) << "127.0.0.1:" << server_->port()
                          << ":postgres:postgres:" << testing::PostgresServer::kPassword << "\n";
  ASSERT_EQ(chmod(passfile.c_str(), 0600), 0);
  std::string url = url_;
  url.erase(url.find(':', url.find("//")),
            std::string(testing::PostgresServer::kPassword).size() + 1);  // ":PASSWORD"
  ASSERT_EQ(url.find(testing::PostgresServer::kPassword), std::string::npos) << url;
  auto without = PostgresOperations::Open(url, {});
  EXPECT_EQ(without.status().code(), absl::StatusCode::kUnavailable) << "no password at all";
  auto store = PostgresOperations::Open(url + "&passfile=" + passfile, {});
  EXPECT_TRUE(store.ok()) << store.status();
  const std::string rm = std::string("rm -rf '") + dir + "'";
  ASSERT_EQ(std::system(rm.c_str()), 0);
}

TEST_F(PostgresOperationsTest, TablesOfAnotherVersionAreRefusedAndLeftAlone) {
  ASSERT_TRUE(PostgresOperations::Open(url_, {}).ok());
  ASSERT_TRUE(server_->Psql("UPDATE " + schema_ + ".filemesh_schema SET version = 7"));
  auto store = PostgresOperations::Open(url_, {});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), ::testing::HasSubstr("version 7"));
  std::string version;
  ASSERT_TRUE(server_->Psql("SELECT version FROM " + schema_ + ".filemesh_schema", &version));
  EXPECT_EQ(version, "7\n");
  // A table of that name without the version beside it is not ours either.
  ASSERT_TRUE(server_->Psql("DROP TABLE " + schema_ + ".filemesh_schema"));
  EXPECT_EQ(PostgresOperations::Open(url_, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(PostgresOperationsTest, TablesDroppedUnderTheStoreAreUnavailable) {
  auto store = PostgresOperations::Open(url_, {});
  ASSERT_TRUE(store.ok()) << store.status();
  std::string id = (*store)->Add(Pending("c"), kT0).value();
  ASSERT_TRUE(server_->Psql("DROP TABLE " + schema_ + ".filemesh_operations"));
  EXPECT_EQ((*store)->Find(id, kT0).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*store)->Complete("c", absl::OkStatus(), "x", kT0).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ((*store)->Add(Pending("d"), kT0).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(PostgresOperationsTest, AStatementKeptWaitingIsCancelledAfterTheStatementTimeout) {
  // The URL's statement_timeout (300 ms) stands: the store's default
  // (kStatementTimeout) applies only when the URL sets none.
  std::string schema;
  server_->NewSchemaUrl(&schema);  // libpq takes one options parameter: both in it
  auto store = PostgresOperations::Open(
      server_->Url("options=-c%20search_path%3D" + schema + "%20-c%20statement_timeout%3D300"), {});
  ASSERT_TRUE(store.ok()) << store.status();
  // Another session holds the table for 3 s (as a stuck migration would);
  // the store's next read waits on it.
  const std::string holder = "filemesh-lock-holder";
  std::thread hold([&] {
    server_->Psql("SET application_name = '" + holder + "'; BEGIN; LOCK TABLE " + schema +
                  ".filemesh_operations IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT");
  });
  auto held = [&] {
    std::string count;
    server_->Psql(
        "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE a.application_name = '" +
            holder +
            "' AND l.mode = 'AccessExclusiveLock' "
            "AND l.granted AND l.relation = '" +
            schema + ".filemesh_operations'::regclass",
        &count);
    return count == "1\n";
  };
  for (int i = 0; i < 600 && !held(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(held()) << "the lock was never taken";
  absl::StatusOr<size_t> count = (*store)->Count();
  EXPECT_EQ(count.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(count.status().message()),
              ::testing::HasSubstr("canceling statement due to statement timeout"));
  hold.join();
}

TEST_F(PostgresOperationsTest, AServerThatNeverAnswersIsAnErrorAfterTheConnectTimeout) {
  // A listener that accepts (the kernel does) and never says a word.
  int port = 0;
  const int fd = testing::BindLowLoopbackPort(&port);
  ASSERT_EQ(listen(fd, 4), 0);
  auto store = PostgresOperations::Open(
      "postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres?connect_timeout=2",
      {});
  close(fd);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(store.status().message()), ::testing::HasSubstr("timeout"));
}

}  // namespace
}  // namespace filemesh::internal
