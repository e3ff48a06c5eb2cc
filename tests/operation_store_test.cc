#include "rest/operation_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "rest/sqlite_operations.h"

namespace filemesh::internal {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

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

  std::unique_ptr<OperationStore> Open(OperationLimits limits = {}) {
    auto store = OpenOperationStore(GetParam() == "memory" ? "" : path_, limits);
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
};

INSTANTIATE_TEST_SUITE_P(Backends, OperationStoreTest, ::testing::Values("memory", "sqlite"),
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

TEST_P(SqliteOperationsTest, OperationsOutliveTheProcessThatMadeThem) {
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
  // PostgreSQL is not there yet: said so, not taken for a file name.
  EXPECT_EQ(OpenOperationStore("postgresql://db.example/ops", {}).status().code(),
            absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace filemesh::internal
