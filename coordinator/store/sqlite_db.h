// A thin layer over the sqlite3 C API: one connection with a cache of prepared statements,
// statements that bind parameters and read columns, and a transaction that rolls back unless
// committed. Errors become absl::Status with SQLite's message and the statement that failed.
//
// Thread safety: none. A Db and the Statements it hands out belong to one thread at a time;
// the store guards each connection with its own mutex.
#ifndef ABLATE_COORDINATOR_STORE_SQLITE_DB_H_
#define ABLATE_COORDINATOR_STORE_SQLITE_DB_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ablate::coordinator::internal {

// A prepared statement borrowed from its Db's cache. Parameters are numbered from 1, columns
// from 0. Destroying it resets the statement for the next user, so one SQL text must not be in
// use twice at the same time.
class Statement {
 public:
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;

  Statement& Bind(int index, int64_t value);
  // NaN is stored as the text "NaN" (SQLite would store NULL) and Double reads it back as a
  // NaN; infinities are stored as they are.
  Statement& Bind(int index, double value);
  Statement& Bind(int index, absl::string_view text);
  Statement& Bind(int index, std::optional<double> value);  // NULL when empty
  Statement& BindBlob(int index, absl::string_view bytes);
  // The same without SQLite's copy of `bytes`, which must then stay valid and unchanged until
  // the statement has run (Run, Step or ForEachRow) and is bound anew.
  Statement& BindBlobUncopied(int index, absl::string_view bytes);

  // Steps once: true when a row is ready to read, false when the statement is done. A bind
  // that failed earlier is reported here.
  absl::StatusOr<bool> Step();
  // Steps to the end, for statements that return no rows.
  absl::Status Run();
  // Steps through every row, calling `fn` on each; stops at the first error.
  absl::Status ForEachRow(absl::FunctionRef<absl::Status(const Statement&)> fn);

  bool IsNull(int column) const;
  int64_t Int(int column) const;
  double Double(int column) const;
  std::optional<double> OptionalDouble(int column) const;
  std::string Text(int column) const;
  absl::string_view Blob(int column) const;  // valid until the next Step

  // Resets for another round of binds and steps, keeping the statement.
  void Reset();

 private:
  void Check(int rc);

  sqlite3_stmt* stmt_;
  sqlite3* db_;
  int bind_error_ = 0;
};

class Db {
 public:
  // Opens (creating when asked) the database at `path`; ":memory:" opens a private one.
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path, bool create);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Whether SQLite opened the file read-only, as it does without saying when the file is not
  // writable by this process: every write then fails.
  bool ReadOnly() const;
  // Runs SQL text that may hold several statements and binds nothing: pragmas and schema.
  absl::Status Exec(absl::string_view sql);
  // A statement for `sql`, prepared on first use and kept for the connection's life.
  absl::StatusOr<Statement> Prepare(absl::string_view sql);

  int64_t LastInsertRowid() const;
  int Changes() const;  // rows the last statement changed

  // Stops SQLite's checkpoint at commit (wal_autocheckpoint) on this connection: a commit then
  // only appends to the write-ahead log, and the owner copies the log back with Checkpoint when
  // it chooses, e.g. after the commit's writers have been answered. A commit is durable once in
  // the log, so this moves the copy's time and nothing else.
  void DeferCheckpoints();
  // Pages the log held after this connection's last commit, since DeferCheckpoints; 0 before.
  int wal_pages() const { return wal_pages_; }
  // Copies what the log holds into the database (a PASSIVE checkpoint: it waits for no reader
  // and leaves the frames a reader's snapshot still needs), and sets wal_pages to 0.
  absl::Status Checkpoint();

 private:
  explicit Db(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  int wal_pages_ = 0;
  absl::flat_hash_map<std::string, sqlite3_stmt*> statements_;
};

// BEGIN on construction (IMMEDIATE for writers, so the write lock is taken up front and a
// busy database is waited on once, not midway); ROLLBACK on destruction unless committed.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Db& db, bool write);
  ~Transaction();
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;

  absl::Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;  // null once committed or rolled back
};

// The Status for an SQLite result code: Unavailable when the database is busy or locked,
// ResourceExhausted when the disk is full, AlreadyExists for a broken unique constraint,
// Internal otherwise.
absl::Status SqliteError(int rc, absl::string_view message, absl::string_view context);

}  // namespace ablate::coordinator::internal

#endif  // ABLATE_COORDINATOR_STORE_SQLITE_DB_H_
