#include "coordinator/store/sqlite_floor.h"

#include "absl/strings/str_cat.h"
#include "coordinator/store/sqlite_db.h"

namespace ablate::coordinator::floor {

using internal::Db;
using internal::Statement;
using internal::Transaction;

absl::Status InsertJobs(const std::string& db_path, const std::string& sweep_id,
                        const std::vector<v1::JobSpec>& jobs) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(db_path, /*create=*/false);
  if (!db.ok()) return db.status();
  absl::StatusOr<Transaction> transaction = Transaction::Begin(**db, /*write=*/true);
  if (!transaction.ok()) return transaction.status();
  absl::StatusOr<Statement> sweep =
      (*db)->Prepare("INSERT INTO sweeps (id, name, spec, created_at) VALUES (?1, ?1, x'', 0)");
  if (!sweep.ok()) return sweep.status();
  if (absl::Status s = sweep->Bind(1, sweep_id).Run(); !s.ok()) return s;
  absl::StatusOr<Statement> insert = (*db)->Prepare(
      "INSERT INTO jobs (id, sweep_id, idx, spec, state, max_attempts, created_at, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, 1, 3, 0, 0)");
  if (!insert.ok()) return insert.status();
  std::string bytes;
  for (const v1::JobSpec& job : jobs) {
    job.SerializeToString(&bytes);
    absl::Status s = insert->Bind(1, job.job_id())
                         .Bind(2, sweep_id)
                         .Bind(3, int64_t{job.index()})
                         .BindBlob(4, bytes)
                         .Run();
    if (!s.ok()) return s;
    insert->Reset();
  }
  return transaction->Commit();
}

absl::Status AppendPoints(const std::string& db_path, const std::vector<v1::MetricPoint>& points,
                          int rounds, int jobs, int rows_per_commit) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(db_path, /*create=*/false);
  if (!db.ok()) return db.status();
  // The store's settings for the same file.
  if (absl::Status s = (*db)->Exec(absl::StrCat("PRAGMA synchronous = NORMAL; "
                                                "PRAGMA cache_size = -65536; "
                                                "PRAGMA wal_autocheckpoint = ",
                                                internal::kWalCheckpointPages));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<Statement> insert = (*db)->Prepare(
      "INSERT INTO metrics (job, attempt_id, name, step, value, wall_time) "
      "VALUES (?5, 1, ?1, ?2, ?3, ?4)");
  if (!insert.ok()) return insert.status();
  int in_transaction = 0;
  if (absl::Status s = (*db)->Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  for (int round = 0; round < rounds; ++round) {
    for (const v1::MetricPoint& point : points) {
      absl::Status s = insert->Bind(1, point.name())
                           .Bind(2, point.step() + int64_t{round} * 1'000'000)
                           .Bind(3, point.value())
                           .Bind(4, point.wall_time())
                           .Bind(5, int64_t{1 + round % jobs})
                           .Run();
      if (!s.ok()) return s;
      insert->Reset();
      if (++in_transaction == rows_per_commit) {
        if (absl::Status c = (*db)->Exec("COMMIT; BEGIN IMMEDIATE"); !c.ok()) return c;
        in_transaction = 0;
      }
    }
  }
  return (*db)->Exec("COMMIT");
}

absl::StatusOr<int64_t> ReadSeries(const std::string& db_path, int64_t job,
                                   const std::string& name) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(db_path, /*create=*/false);
  if (!db.ok()) return db.status();
  absl::StatusOr<Statement> rows = (*db)->Prepare(
      "SELECT step, value FROM metrics WHERE job = ?1 AND name = ?2 ORDER BY step, rowid");
  if (!rows.ok()) return rows.status();
  rows->Bind(1, job).Bind(2, name);
  int64_t n = 0;
  absl::Status read = rows->ForEachRow([&](const Statement& row) {
    row.Int(0);  // each column read, as a reader would
    row.Double(1);
    ++n;
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  return n;
}

}  // namespace ablate::coordinator::floor
