#include "coordinator/store/sqlite_db.h"

#include <sqlite3.h>

#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ablate::coordinator::internal {

namespace {

// SQLite stores a NaN bound as a double as NULL; it is stored as this text instead, which a
// REAL column keeps as text (it does not read as a number). Infinities are REAL values already.
constexpr absl::string_view kNaN = "NaN";

}  // namespace

absl::Status SqliteError(int rc, absl::string_view message, absl::string_view context) {
  const std::string text = absl::StrCat("sqlite: ", message, " (", context, ")");
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(text);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(text);
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return absl::AlreadyExistsError(text);
      }
      return absl::InternalError(text);
    default:
      return absl::InternalError(text);
  }
}

// --- Statement ------------------------------------------------------------------------------

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), db_(other.db_), bind_error_(other.bind_error_) {}

Statement::~Statement() {
  if (stmt_ != nullptr) Reset();
}

void Statement::Check(int rc) {
  if (rc != SQLITE_OK && bind_error_ == 0) bind_error_ = rc;
}

Statement& Statement::Bind(int index, int64_t value) {
  Check(sqlite3_bind_int64(stmt_, index, value));
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  if (std::isnan(value)) {
    Check(
        sqlite3_bind_text(stmt_, index, kNaN.data(), static_cast<int>(kNaN.size()), SQLITE_STATIC));
  } else {
    Check(sqlite3_bind_double(stmt_, index, value));
  }
  return *this;
}

Statement& Statement::Bind(int index, absl::string_view text) {
  Check(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                          SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::Bind(int index, std::optional<double> value) {
  if (value.has_value()) return Bind(index, *value);
  Check(sqlite3_bind_null(stmt_, index));
  return *this;
}

Statement& Statement::BindBlob(int index, absl::string_view bytes) {
  Check(sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                          SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::BindBlobUncopied(int index, absl::string_view bytes) {
  Check(
      sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC));
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_error_ != 0) {
    return SqliteError(bind_error_, sqlite3_errstr(bind_error_), sqlite3_sql(stmt_));
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(sqlite3_extended_errcode(db_), sqlite3_errmsg(db_), sqlite3_sql(stmt_));
}

absl::Status Statement::Run() {
  return ForEachRow([](const Statement&) { return absl::OkStatus(); });
}

absl::Status Statement::ForEachRow(absl::FunctionRef<absl::Status(const Statement&)> fn) {
  for (;;) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
    if (absl::Status status = fn(*this); !status.ok()) return status;
  }
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::Double(int column) const {
  // Only a NaN is stored as text in a REAL column (see kNaN).
  if (sqlite3_column_type(stmt_, column) == SQLITE_TEXT) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return sqlite3_column_double(stmt_, column);
}

std::optional<double> Statement::OptionalDouble(int column) const {
  if (IsNull(column)) return std::nullopt;
  return Double(column);
}

std::string Statement::Text(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  return text == nullptr ? "" : std::string(text, sqlite3_column_bytes(stmt_, column));
}

absl::string_view Statement::Blob(int column) const {
  const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
  return bytes == nullptr ? "" : absl::string_view(bytes, sqlite3_column_bytes(stmt_, column));
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = 0;
}

// --- Db -------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path, bool create) {
  sqlite3* handle = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  const int rc = sqlite3_open_v2(path.c_str(), &handle, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status =
        SqliteError(rc, handle ? sqlite3_errmsg(handle) : sqlite3_errstr(rc), path);
    sqlite3_close(handle);
    return status;
  }
  sqlite3_extended_result_codes(handle, 1);
  return std::unique_ptr<Db>(new Db(handle));
}

Db::~Db() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

bool Db::ReadOnly() const { return sqlite3_db_readonly(db_, "main") == 1; }

absl::Status Db::Exec(absl::string_view sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status status = SqliteError(sqlite3_extended_errcode(db_),
                                    error != nullptr ? error : sqlite3_errstr(rc), sql);
  sqlite3_free(error);
  return status;
}

absl::StatusOr<Statement> Db::Prepare(absl::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(rc, sqlite3_errmsg(db_), sql);
    it = statements_.emplace(std::string(sql), stmt).first;
  }
  return Statement(it->second, db_);
}

int64_t Db::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

int Db::Changes() const { return sqlite3_changes(db_); }

void Db::DeferCheckpoints() {
  // A hook of our own replaces the one wal_autocheckpoint installs.
  sqlite3_wal_hook(
      db_,
      [](void* self, sqlite3*, const char*, int pages) {
        static_cast<Db*>(self)->wal_pages_ = pages;
        return SQLITE_OK;
      },
      this);
}

absl::Status Db::Checkpoint() {
  wal_pages_ = 0;
  const int rc =
      sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(rc, sqlite3_errmsg(db_), "checkpoint");
  return absl::OkStatus();
}

// --- Transaction ----------------------------------------------------------------------------

absl::StatusOr<Transaction> Transaction::Begin(Db& db, bool write) {
  if (absl::Status begin = db.Exec(write ? "BEGIN IMMEDIATE" : "BEGIN"); !begin.ok()) {
    return begin;
  }
  return Transaction(&db);
}

Transaction::~Transaction() {
  // Rollback only fails when there is nothing to roll back.
  if (db_ != nullptr) db_->Exec("ROLLBACK").IgnoreError();
}

absl::Status Transaction::Commit() {
  absl::Status status = db_->Exec("COMMIT");
  if (status.ok()) db_ = nullptr;
  return status;
}

}  // namespace ablate::coordinator::internal
