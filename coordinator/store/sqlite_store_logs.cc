// Job logs: the tails of each job's newest ended attempts, kept across restarts (schema.cc's
// attempt_logs). Part of SqliteStore (sqlite_store.h).
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/store/sqlite_store.h"

namespace ablate::coordinator {

using internal::Db;
using internal::Statement;

namespace {

// Drops the oldest lines of `log` until its lines hold at most kMaxStoredLogBytes.
void KeepNewestLines(v1::JobLog& log) {
  size_t bytes = 0;
  int first = log.lines_size();
  while (first > 0 && bytes + log.lines(first - 1).size() <= kMaxStoredLogBytes) {
    bytes += log.lines(first - 1).size();
    --first;
  }
  if (first == 0) return;
  log.mutable_lines()->DeleteSubrange(0, first);
  log.set_truncated(true);
}

absl::Status SaveJobLogRow(Db& db, const v1::JobLog& log) {
  absl::StatusOr<Statement> attempt =
      db.Prepare("SELECT 1 FROM attempts WHERE id = ?1 AND job_id = ?2");
  if (!attempt.ok()) return attempt.status();
  const auto attempt_id = static_cast<int64_t>(log.attempt_id());
  absl::StatusOr<bool> found = attempt->Bind(1, attempt_id).Bind(2, log.job_id()).Step();
  if (!found.ok()) return found.status();
  if (!*found) {
    return absl::NotFoundError(
        absl::StrCat("job ", log.job_id(), " has no attempt ", log.attempt_id()));
  }
  absl::StatusOr<Statement> upsert = db.Prepare(
      "INSERT INTO attempt_logs (job_id, attempt_id, log) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (job_id, attempt_id) DO UPDATE SET log = excluded.log");
  if (!upsert.ok()) return upsert.status();
  absl::Status saved =
      upsert->Bind(1, log.job_id()).Bind(2, attempt_id).BindBlob(3, log.SerializeAsString()).Run();
  if (!saved.ok()) return saved;
  // The bound per job. A late log of an attempt older than the job's kStoredLogsPerJob newest
  // goes again at once: stored and dropped in one transaction, it changes nothing.
  absl::StatusOr<Statement> trim = db.Prepare(
      "DELETE FROM attempt_logs WHERE job_id = ?1 AND attempt_id < (SELECT MIN(attempt_id) FROM "
      "(SELECT attempt_id FROM attempt_logs WHERE job_id = ?1 ORDER BY attempt_id DESC "
      "LIMIT ?2))");
  if (!trim.ok()) return trim.status();
  return trim->Bind(1, log.job_id()).Bind(2, int64_t{kStoredLogsPerJob}).Run();
}

}  // namespace

void SqliteStore::SaveJobLogAsync(v1::JobLog log, WriteDone done) {
  KeepNewestLines(log);  // here, on the caller's thread, rather than on the writer's
  writer_.Submit(
      [log = std::move(log)](Db& db, internal::Changes&) { return SaveJobLogRow(db, log); }, 1,
      std::move(done));
}

absl::StatusOr<v1::JobLog> SqliteStore::ReadJobLog(const std::string& job_id, uint64_t attempt_id) {
  v1::JobLog out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    // Attempt 0 matches every attempt; the newest comes first.
    absl::StatusOr<Statement> query = db.Prepare(
        "SELECT log FROM attempt_logs WHERE job_id = ?1 AND ?2 IN (0, attempt_id) "
        "ORDER BY attempt_id DESC LIMIT 1");
    if (!query.ok()) return query.status();
    absl::StatusOr<bool> found =
        query->Bind(1, job_id).Bind(2, static_cast<int64_t>(attempt_id)).Step();
    if (!found.ok()) return found.status();
    if (!*found) return absl::OkStatus();
    const absl::string_view log = query->Blob(0);
    if (!out.ParseFromArray(log.data(), static_cast<int>(log.size()))) {
      return absl::DataLossError(absl::StrCat("job ", job_id, ": stored log does not parse"));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  out.set_job_id(job_id);
  return out;
}

}  // namespace ablate::coordinator
