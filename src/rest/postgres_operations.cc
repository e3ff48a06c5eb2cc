#include "rest/postgres_operations.h"

#include <libpq-fe.h>

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "base/random_id.h"
#include "filemesh/service/log.hpp"

namespace filemesh::internal {
namespace {

// filemesh_schema's version for the tables below; another is refused.
constexpr int kSchemaVersion = 1;

// Taken (for the transaction) while the tables are made or checked, so that
// replicas starting together do not race to make them: any number, the same
// in every replica.
constexpr char kSchemaLockKey[] = "112186143003512";

// Every string is bytea: paths, messages and call ids come from outside and
// need not be valid in the database's encoding.
constexpr char kSchema[] = R"sql(
CREATE TABLE filemesh_schema (version integer NOT NULL);
INSERT INTO filemesh_schema (version) VALUES (1);
CREATE TABLE filemesh_operations (
  id bytea PRIMARY KEY,
  call_id bytea NOT NULL UNIQUE,
  kind integer NOT NULL,
  served_by integer NOT NULL,
  path bytea NOT NULL,
  owner bytea NOT NULL,
  create_us bigint NOT NULL,
  update_us bigint NOT NULL,
  expire_us bigint NOT NULL,
  done boolean NOT NULL DEFAULT false,
  code integer NOT NULL DEFAULT 0,
  message bytea NOT NULL DEFAULT ''::bytea,
  response bytea NOT NULL DEFAULT ''::bytea,
  bytes bigint NOT NULL DEFAULT 0
);
CREATE INDEX filemesh_operations_by_age ON filemesh_operations (create_us, id);
CREATE INDEX filemesh_operations_by_expiry ON filemesh_operations (expire_us);
)sql";

PGconn* Conn(void* conn) { return static_cast<PGconn*>(conn); }

std::string Millis(absl::Duration d) { return std::to_string(absl::ToInt64Milliseconds(d)); }

// libpq's messages end with a newline and may hold several lines (one per
// host tried): one line for a status.
std::string OneLine(const char* message) {
  std::string text = absl::StrReplaceAll(message == nullptr ? "" : message, {{"\n", "; "}});
  absl::string_view trimmed = text;
  while (absl::ConsumeSuffix(&trimmed, "; ") || absl::ConsumeSuffix(&trimmed, " ")) {
  }
  return std::string(trimmed);
}

void IgnoreNotice(void* /*arg*/, const char* /*message*/) {}

}  // namespace

// The parameters of one statement: integers as text, strings as binary
// bytea (viewed, not copied: they must outlive the statement).
class PostgresOperations::Params {
 public:
  Params& Int(int64_t value) {
    params_.push_back({std::to_string(value), {}, 0});
    return *this;
  }
  Params& Bytes(std::string_view bytes) {
    params_.push_back({{}, bytes, 1});
    return *this;
  }

  int size() const { return static_cast<int>(params_.size()); }
  // The arrays PQexecParams takes, valid while this lives unchanged.
  void Arrays(std::vector<const char*>* values, std::vector<int>* lengths,
              std::vector<int>* formats) const {
    for (const Param& p : params_) {
      const std::string_view value = p.format == 0 ? std::string_view(p.text) : p.bytes;
      // A null pointer would be SQL NULL: an empty value is "".
      values->push_back(value.empty() ? "" : value.data());
      lengths->push_back(static_cast<int>(value.size()));
      formats->push_back(p.format);
    }
  }

 private:
  struct Param {
    std::string text;
    std::string_view bytes;
    int format;  // 0 text, 1 binary
  };
  std::vector<Param> params_;
};

// A statement's result, in binary: integers big-endian, bytea raw.
class PostgresOperations::Result {
 public:
  explicit Result(PGresult* result) : result_(result, &PQclear) {}

  const PGresult* get() const { return result_.get(); }
  int rows() const { return PQntuples(result_.get()); }
  // Rows a DELETE or UPDATE touched.
  int64_t changed() const {
    int64_t n = 0;
    return absl::SimpleAtoi(PQcmdTuples(result_.get()), &n) ? n : 0;
  }
  int64_t Int(int row, int column) const {
    const auto* bytes =
        reinterpret_cast<const unsigned char*>(PQgetvalue(result_.get(), row, column));
    const int length = PQgetlength(result_.get(), row, column);
    uint64_t value = 0;
    for (int i = 0; i < length && i < 8; ++i) value = (value << 8) | bytes[i];
    // Sign-extend the 1-, 2- and 4-byte types (boolean, integer).
    if (length > 0 && length < 8 && (bytes[0] & 0x80) != 0) value |= ~uint64_t{0} << (8 * length);
    return static_cast<int64_t>(value);
  }
  std::string Bytes(int row, int column) const {
    return std::string(PQgetvalue(result_.get(), row, column),
                       static_cast<size_t>(PQgetlength(result_.get(), row, column)));
  }

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> result_;
};

PostgresOperations::PostgresOperations(std::string url, OperationLimits limits)
    : url_(std::move(url)), redacted_(RedactUrl(url_)), limits_(limits) {}

PostgresOperations::~PostgresOperations() {
  MutexLock lock(&mu_);
  PQfinish(Conn(conn_));
}

bool PostgresOperations::Broken() const {
  return conn_ == nullptr || PQstatus(Conn(conn_)) != CONNECTION_OK;
}

absl::Status PostgresOperations::Connect() {
  if (!Broken()) return absl::OkStatus();
  if (conn_ != nullptr) {
    PQfinish(Conn(conn_));
    conn_ = nullptr;
    reconnects_.fetch_add(1);
  }
  // Defaults first: the URL's own settings (expanded from dbname) override
  // them.
  const std::string connect_timeout = std::to_string(absl::ToInt64Seconds(kConnectTimeout));
  const std::string tcp_user_timeout = Millis(kTcpUserTimeout);
  const char* const keys[] = {"connect_timeout",     "keepalives",       "keepalives_idle",
                              "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                              "application_name",    "dbname",           nullptr};
  const char* const values[] = {
      connect_timeout.c_str(), "1",          "5",    "2", "3", tcp_user_timeout.c_str(),
      "filemesh-gateway",      url_.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return absl::ResourceExhaustedError("operations database: libpq could not allocate");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    absl::Status status =
        absl::UnavailableError(absl::StrCat("cannot connect to the operations database ", redacted_,
                                            ": ", OneLine(PQerrorMessage(conn))));
    PQfinish(conn);
    return status;
  }
  PQsetNoticeProcessor(conn, &IgnoreNotice, nullptr);
  conn_ = conn;
  // A statement timeout unless the URL set one (options=-c statement_timeout=...).
  Params params;
  params.Int(absl::ToInt64Milliseconds(kStatementTimeout));
  absl::StatusOr<Result> set = Exec("set the statement timeout",
                                    "SELECT set_config('statement_timeout', $1::text, false) "
                                    "WHERE current_setting('statement_timeout') = '0'",
                                    params);
  return set.status();
}

absl::StatusOr<PostgresOperations::Result> PostgresOperations::Exec(std::string_view what,
                                                                    const char* sql,
                                                                    const Params& params) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  params.Arrays(&values, &lengths, &formats);
  Result result(PQexecParams(Conn(conn_), sql, params.size(), /*paramTypes=*/nullptr, values.data(),
                             lengths.data(), formats.data(), /*resultFormat=*/1));
  const ExecStatusType status = PQresultStatus(result.get());  // PGRES_FATAL_ERROR when null
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return result;
  const char* message =
      result.get() != nullptr ? PQresultErrorMessage(result.get()) : PQerrorMessage(Conn(conn_));
  return absl::UnavailableError(absl::StrCat("operations database ", redacted_, ": ",
                                             std::string(what), ": ", OneLine(message)));
}

template <typename T>
absl::StatusOr<T> PostgresOperations::WithConnection(
    bool retry, const std::function<absl::StatusOr<T>()>& attempt) {
  for (int tries = 0;; ++tries) {
    if (absl::Status connected = Connect(); !connected.ok()) return connected;
    absl::StatusOr<T> result = attempt();
    if (result.ok() || !retry || tries > 0 || !Broken()) return result;
  }
}

absl::Status PostgresOperations::PrepareSchema() {
  const Params none;
  // One transaction, under a lock every replica takes: the first makes the
  // tables, the others find them.
  if (absl::StatusOr<Result> begin = Exec("begin", "BEGIN", none); !begin.ok()) {
    return begin.status();
  }
  auto prepare = [&]() -> absl::Status {
    mu_.AssertHeld();
    if (absl::StatusOr<Result> lock =
            Exec("lock", absl::StrCat("SELECT pg_advisory_xact_lock(", kSchemaLockKey, ")").c_str(),
                 none);
        !lock.ok()) {
      return lock.status();
    }
    absl::StatusOr<Result> found =
        Exec("find the tables",
             "SELECT (to_regclass('filemesh_schema') IS NOT NULL)::int4, "
             "(to_regclass('filemesh_operations') IS NOT NULL)::int4",
             none);
    if (!found.ok()) return found.status();
    const bool has_schema = found->Int(0, 0) != 0;
    const bool has_operations = found->Int(0, 1) != 0;
    if (!has_schema && !has_operations) {
      // Several statements: the simple protocol (no parameters).
      Result made(PQexec(Conn(conn_), kSchema));
      if (PQresultStatus(made.get()) != PGRES_COMMAND_OK) {
        return absl::UnavailableError(
            absl::StrCat("operations database ", redacted_, ": cannot make the tables: ",
                         OneLine(made.get() != nullptr ? PQresultErrorMessage(made.get())
                                                       : PQerrorMessage(Conn(conn_)))));
      }
      return absl::OkStatus();
    }
    int64_t version = -1;
    if (has_schema) {
      absl::StatusOr<Result> read =
          Exec("read the schema version", "SELECT MAX(version)::int8 FROM filemesh_schema", none);
      if (!read.ok()) return read.status();
      if (read->rows() == 1 && PQgetisnull(read->get(), 0, 0) == 0) version = read->Int(0, 0);
    }
    if (version != kSchemaVersion || !has_operations) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the operations database ", redacted_,
          " does not hold filemesh operations of schema version ", kSchemaVersion,
          " (filemesh_schema: ", has_schema ? absl::StrCat("version ", version) : "missing",
          "; filemesh_operations: ", has_operations ? "present" : "missing",
          "); give another database, or drop those tables"));
    }
    return absl::OkStatus();
  };
  absl::Status status = prepare();
  absl::StatusOr<Result> end =
      Exec(status.ok() ? "commit" : "roll back", status.ok() ? "COMMIT" : "ROLLBACK", none);
  if (status.ok() && !end.ok()) status = end.status();
  return status;
}

absl::StatusOr<std::unique_ptr<PostgresOperations>> PostgresOperations::Open(
    const std::string& url, OperationLimits limits) {
  if (absl::Status checked = CheckOperationLimits(limits); !checked.ok()) return checked;
  std::unique_ptr<PostgresOperations> store(new PostgresOperations(url, limits));
  MutexLock lock(&store->mu_);
  if (absl::Status s = store->Connect(); !s.ok()) return s;
  if (absl::Status s = store->PrepareSchema(); !s.ok()) return s;
  return store;
}

absl::Status PostgresOperations::Purge(absl::Time now) {
  Params at;
  at.Int(absl::ToUnixMicros(now));
  absl::StatusOr<Result> expired =
      Exec("purge", "DELETE FROM filemesh_operations WHERE expire_us <= $1", at);
  if (!expired.ok()) return expired.status();
  absl::StatusOr<Result> totals =
      Exec("count", "SELECT COUNT(*), COALESCE(SUM(bytes), 0)::int8 FROM filemesh_operations", {});
  if (!totals.ok()) return totals.status();
  if (static_cast<uint64_t>(totals->Int(0, 0)) <= limits_.capacity &&
      static_cast<uint64_t>(totals->Int(0, 1)) <= limits_.max_bytes) {
    return absl::OkStatus();
  }
  // Past a bound, the oldest go: every operation beyond the newest ones that
  // fit both bounds together.
  Params bounds;
  bounds.Int(static_cast<int64_t>(limits_.capacity)).Int(static_cast<int64_t>(limits_.max_bytes));
  absl::StatusOr<Result> evicted =
      Exec("evict",
           "DELETE FROM filemesh_operations WHERE id IN (SELECT id FROM (SELECT id, "
           "COUNT(*) OVER newest AS n, SUM(bytes) OVER newest AS b FROM filemesh_operations "
           "WINDOW newest AS (ORDER BY create_us DESC, id DESC ROWS UNBOUNDED PRECEDING)) t "
           "WHERE n > $1 OR b > $2)",
           bounds);
  if (!evicted.ok()) return evicted.status();
  evicted_.fetch_add(static_cast<uint64_t>(evicted->changed()));
  return absl::OkStatus();
}

absl::StatusOr<std::string> PostgresOperations::Add(const StoredOperation& op, absl::Time now) {
  MutexLock lock(&mu_);
  return WithConnection<std::string>(/*retry=*/false, [&]() -> absl::StatusOr<std::string> {
    mu_.AssertHeld();                // by the caller, through WithConnection
    std::string id = RandomHexId();  // 128 random bits: never taken
    Params params;
    params.Bytes(id)
        .Bytes(op.call_id)
        .Int(op.kind)
        .Int(op.served_by)
        .Bytes(op.path)
        .Bytes(op.owner)
        .Int(absl::ToUnixMicros(now))
        .Int(absl::ToUnixMicros(now))
        .Int(absl::ToUnixMicros(now + limits_.ttl));
    absl::StatusOr<Result> inserted =
        Exec("add",
             "INSERT INTO filemesh_operations (id, call_id, kind, served_by, path, owner, "
             "create_us, update_us, expire_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
             params);
    if (!inserted.ok()) return inserted.status();
    // The operation is stored: a purge that fails is done by the next write.
    (void)Purge(now);
    return id;
  });
}

absl::StatusOr<std::optional<StoredOperation>> PostgresOperations::Find(std::string_view id,
                                                                        absl::Time now) {
  MutexLock lock(&mu_);
  using Found = std::optional<StoredOperation>;
  return WithConnection<Found>(/*retry=*/true, [&]() -> absl::StatusOr<Found> {
    mu_.AssertHeld();  // by the caller, through WithConnection
    Params params;
    params.Bytes(id).Int(absl::ToUnixMicros(now));
    absl::StatusOr<Result> select =
        Exec("find",
             "SELECT id, call_id, kind, served_by, path, owner, create_us, update_us, done, "
             "code, message, response FROM filemesh_operations WHERE id = $1 AND expire_us > $2",
             params);
    if (!select.ok()) return select.status();
    if (select->rows() == 0) return Found();
    StoredOperation op;
    op.id = select->Bytes(0, 0);
    op.call_id = select->Bytes(0, 1);
    op.kind = static_cast<int>(select->Int(0, 2));
    op.served_by = static_cast<int>(select->Int(0, 3));
    op.path = select->Bytes(0, 4);
    op.owner = select->Bytes(0, 5);
    op.create_time = absl::FromUnixMicros(select->Int(0, 6));
    op.update_time = absl::FromUnixMicros(select->Int(0, 7));
    op.done = select->Int(0, 8) != 0;
    const int64_t code = select->Int(0, 9);
    if (op.done && code != 0) {
      op.error = absl::Status(code >= 1 && code <= 16 ? static_cast<absl::StatusCode>(code)
                                                      : absl::StatusCode::kUnknown,
                              select->Bytes(0, 10));
    }
    op.response = select->Bytes(0, 11);
    return Found(std::move(op));
  });
}

absl::StatusOr<bool> PostgresOperations::Complete(std::string_view call_id,
                                                  const absl::Status& status,
                                                  std::string_view response, absl::Time now) {
  MutexLock lock(&mu_);
  const std::string_view body = status.ok() ? response : std::string_view();
  const std::string_view message(status.message().data(), status.message().size());
  // Idempotent: only a pending operation is updated, so a second try (here,
  // or by another replica) changes nothing.
  return WithConnection<bool>(/*retry=*/true, [&]() -> absl::StatusOr<bool> {
    mu_.AssertHeld();  // by the caller, through WithConnection
    Params params;
    params.Int(static_cast<int64_t>(status.code()))
        .Bytes(message)
        .Bytes(body)
        .Int(static_cast<int64_t>(body.size() + message.size()))
        .Int(absl::ToUnixMicros(now))
        .Bytes(call_id)
        .Int(absl::ToUnixMicros(now));
    absl::StatusOr<Result> update =
        Exec("complete",
             "UPDATE filemesh_operations SET done = true, code = $1, message = $2, "
             "response = $3, bytes = $4, update_us = $5 "
             "WHERE call_id = $6 AND NOT done AND expire_us > $7",
             params);
    if (!update.ok()) return update.status();
    (void)Purge(now);  // a failed purge is done by the next write
    return update->changed() == 1;
  });
}

absl::StatusOr<size_t> PostgresOperations::Count() {
  MutexLock lock(&mu_);
  return WithConnection<size_t>(/*retry=*/true, [&]() -> absl::StatusOr<size_t> {
    mu_.AssertHeld();  // by the caller, through WithConnection
    absl::StatusOr<Result> count = Exec("count", "SELECT COUNT(*) FROM filemesh_operations", {});
    if (!count.ok()) return count.status();
    return static_cast<size_t>(count->Int(0, 0));
  });
}

}  // namespace filemesh::internal
