#include "rest/sqlite_operations.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/absl_compat.h"
#include "base/random_id.h"

namespace filemesh::internal {
namespace {

// PRAGMA user_version of the schema below; another version is refused.
constexpr int kSchemaVersion = 1;

// How long a writer waits for another process's transaction on the file.
constexpr int kBusyTimeoutMs = 5000;

constexpr char kSchema[] = R"sql(
CREATE TABLE operations (
  id TEXT PRIMARY KEY,
  call_id TEXT NOT NULL UNIQUE,
  kind INTEGER NOT NULL,
  served_by INTEGER NOT NULL,
  path BLOB NOT NULL,
  owner TEXT NOT NULL,
  create_us INTEGER NOT NULL,
  update_us INTEGER NOT NULL,
  expire_us INTEGER NOT NULL,
  done INTEGER NOT NULL DEFAULT 0,
  code INTEGER NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  response BLOB NOT NULL DEFAULT x'',
  bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX operations_by_age ON operations(create_us);
)sql";

sqlite3* Db(void* db) { return static_cast<sqlite3*>(db); }

}  // namespace

// A prepared statement, finalized when it goes.
class SqliteOperations::Statement {
 public:
  Statement(void* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(Db(db), sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return rc_ == SQLITE_OK || rc_ == SQLITE_ROW || rc_ == SQLITE_DONE; }
  int rc() const { return rc_; }

  Statement& Bind(int i, int64_t value) {
    if (ok()) rc_ = sqlite3_bind_int64(stmt_, i, value);
    return *this;
  }
  // An empty value is bound as such, never as NULL (which a null data
  // pointer would give).
  Statement& Bind(int i, std::string_view text) {
    if (ok()) {
      rc_ = sqlite3_bind_text(stmt_, i, text.empty() ? "" : text.data(),
                              static_cast<int>(text.size()), SQLITE_TRANSIENT);
    }
    return *this;
  }
  Statement& BindBlob(int i, std::string_view bytes) {
    if (!ok()) return *this;
    rc_ = bytes.empty()
              ? sqlite3_bind_zeroblob(stmt_, i, 0)
              : sqlite3_bind_blob64(stmt_, i, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
    return *this;
  }
  // One step: true with a row, false when done or failed (see ok()).
  bool Step() {
    if (!ok()) return false;
    rc_ = sqlite3_step(stmt_);
    return rc_ == SQLITE_ROW;
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string Text(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

SqliteOperations::SqliteOperations(void* db, OperationLimits limits) : limits_(limits), db_(db) {}

SqliteOperations::~SqliteOperations() {
  MutexLock lock(&mu_);
  sqlite3_close_v2(Db(db_));
}

absl::Status SqliteOperations::Error(std::string_view what) {
  return absl::UnavailableError(
      absl::StrCat("operations database: ", AbslView(what), ": ", sqlite3_errmsg(Db(db_))));
}

absl::Status SqliteOperations::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(Db(db_), sql, nullptr, nullptr, &message) == SQLITE_OK) {
    return absl::OkStatus();
  }
  absl::Status status = absl::UnavailableError(
      absl::StrCat("operations database: ", message == nullptr ? "error" : message));
  sqlite3_free(message);
  return status;
}

absl::StatusOr<std::unique_ptr<SqliteOperations>> SqliteOperations::Open(const std::string& path,
                                                                         OperationLimits limits) {
  if (absl::Status checked = CheckOperationLimits(limits); !checked.ok()) return checked;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("cannot open the operations database \"", path,
                     "\": ", db == nullptr ? sqlite3_errstr(rc) : sqlite3_errmsg(db)));
    sqlite3_close_v2(db);
    return status;
  }
  std::unique_ptr<SqliteOperations> store(new SqliteOperations(db, limits));
  MutexLock lock(&store->mu_);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // WAL: readers never wait for the writer; NORMAL: a commit is durable once
  // the WAL is synced at checkpoints (a power cut may lose the last ones,
  // never corrupt the file).
  if (absl::Status s = store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("\"", path, "\": ", s.message()));
  }
  if (absl::Status s = store->Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  int version = -1;
  {
    Statement get(db, "PRAGMA user_version");
    if (get.Step()) version = static_cast<int>(get.Int(0));
  }
  int64_t tables = 0;
  {
    Statement count(db, "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'");
    if (count.Step()) tables = count.Int(0);
  }
  absl::Status status = absl::OkStatus();
  if (version == 0 && tables == 0) {
    status = store->Exec(kSchema);
    if (status.ok()) {
      status = store->Exec(absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str());
    }
  } else if (version != kSchemaVersion) {
    status = absl::FailedPreconditionError(
        absl::StrCat("\"", path, "\" is not a filemesh operations database of schema version ",
                     kSchemaVersion, " (it has version ", version, " and ", tables,
                     " tables); give another file, or remove this one"));
  }
  if (!status.ok()) {
    (void)store->Exec("ROLLBACK");
    return status;
  }
  if (absl::Status s = store->Exec("COMMIT"); !s.ok()) return s;
  return store;
}

absl::Status SqliteOperations::Purge(absl::Time now) {
  {
    Statement expired(db_, "DELETE FROM operations WHERE expire_us <= ?");
    expired.Bind(1, absl::ToUnixMicros(now)).Step();
    if (!expired.ok()) return Error("purge");
  }
  // Past a bound, the oldest go first, one at a time (usually one).
  for (;;) {
    Statement totals(db_, "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM operations");
    if (!totals.Step()) return Error("count");
    const auto count = static_cast<size_t>(totals.Int(0));
    const auto bytes = static_cast<size_t>(totals.Int(1));
    if (count <= limits_.capacity && bytes <= limits_.max_bytes) return absl::OkStatus();
    Statement oldest(db_,
                     "DELETE FROM operations WHERE id = "
                     "(SELECT id FROM operations ORDER BY create_us, id LIMIT 1)");
    oldest.Step();
    if (!oldest.ok()) return Error("evict");
    evicted_.fetch_add(1);
  }
}

absl::StatusOr<std::string> SqliteOperations::Add(const StoredOperation& op, absl::Time now) {
  MutexLock lock(&mu_);
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  std::string id = RandomHexId();  // 128 random bits: never taken
  Statement insert(db_,
                   "INSERT INTO operations (id, call_id, kind, served_by, path, owner, create_us, "
                   "update_us, expire_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert.Bind(1, id)
      .Bind(2, op.call_id)
      .Bind(3, op.kind)
      .Bind(4, op.served_by)
      .BindBlob(5, op.path)
      .Bind(6, op.owner)
      .Bind(7, absl::ToUnixMicros(now))
      .Bind(8, absl::ToUnixMicros(now))
      .Bind(9, absl::ToUnixMicros(now + limits_.ttl))
      .Step();
  absl::Status status = insert.ok() ? Purge(now) : Error("add");
  if (status.ok()) status = Exec("COMMIT");
  if (!status.ok()) {
    (void)Exec("ROLLBACK");
    return status;
  }
  return id;
}

absl::StatusOr<std::optional<StoredOperation>> SqliteOperations::Find(std::string_view id,
                                                                      absl::Time now) {
  MutexLock lock(&mu_);
  Statement select(db_,
                   "SELECT id, call_id, kind, served_by, path, owner, create_us, update_us, done, "
                   "code, message, response FROM operations WHERE id = ? AND expire_us > ?");
  select.Bind(1, id).Bind(2, absl::ToUnixMicros(now));
  if (!select.Step()) {
    if (!select.ok()) return Error("find");
    return std::optional<StoredOperation>();
  }
  StoredOperation op;
  op.id = select.Text(0);
  op.call_id = select.Text(1);
  op.kind = static_cast<int>(select.Int(2));
  op.served_by = static_cast<int>(select.Int(3));
  op.path = select.Text(4);
  op.owner = select.Text(5);
  op.create_time = absl::FromUnixMicros(select.Int(6));
  op.update_time = absl::FromUnixMicros(select.Int(7));
  op.done = select.Int(8) != 0;
  const int64_t code = select.Int(9);
  if (op.done && code != 0) {
    op.error = absl::Status(
        code >= 1 && code <= 16 ? static_cast<absl::StatusCode>(code) : absl::StatusCode::kUnknown,
        select.Text(10));
  }
  op.response = select.Text(11);
  return std::optional<StoredOperation>(std::move(op));
}

absl::StatusOr<bool> SqliteOperations::Complete(std::string_view call_id,
                                                const absl::Status& status,
                                                std::string_view response, absl::Time now) {
  MutexLock lock(&mu_);
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  const std::string_view body = status.ok() ? response : std::string_view();
  Statement update(db_,
                   "UPDATE operations SET done = 1, code = ?, message = ?, response = ?, "
                   "bytes = ?, update_us = ? WHERE call_id = ? AND done = 0 AND expire_us > ?");
  update.Bind(1, static_cast<int64_t>(status.code()))
      .Bind(2, std::string_view(status.message().data(), status.message().size()))
      .BindBlob(3, body)
      .Bind(4, static_cast<int64_t>(body.size() + status.message().size()))
      .Bind(5, absl::ToUnixMicros(now))
      .Bind(6, call_id)
      .Bind(7, absl::ToUnixMicros(now))
      .Step();
  if (!update.ok()) {
    absl::Status error = Error("complete");
    (void)Exec("ROLLBACK");
    return error;
  }
  const bool wrote = sqlite3_changes(Db(db_)) == 1;
  absl::Status purged = Purge(now);
  if (purged.ok()) purged = Exec("COMMIT");
  if (!purged.ok()) {
    (void)Exec("ROLLBACK");
    return purged;
  }
  return wrote;
}

absl::StatusOr<size_t> SqliteOperations::Count() {
  MutexLock lock(&mu_);
  Statement count(db_, "SELECT COUNT(*) FROM operations");
  if (!count.Step()) return Error("count");
  return static_cast<size_t>(count.Int(0));
}

}  // namespace filemesh::internal
