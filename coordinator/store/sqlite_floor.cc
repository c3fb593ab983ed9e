#include "coordinator/store/sqlite_floor.h"

#include "ablate/v1/trainer.pb.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "coordinator/store/metric_table.h"
#include "coordinator/store/rows.h"
#include "coordinator/store/sqlite_db.h"
#include "coordinator/store/store.h"

namespace ablate::coordinator::floor {

using internal::Db;
using internal::Statement;
using internal::Transaction;

namespace {

// Inserts the sweep's row and its jobs' rows in `db`'s open transaction; job i's spec column
// holds `spec(i)`, the bytes the store's rows hold (SerializeStoredSpec).
absl::Status InsertRows(Db& db, const std::string& sweep_id, const std::vector<v1::JobSpec>& jobs,
                        absl::FunctionRef<absl::string_view(size_t)> spec) {
  absl::StatusOr<Statement> sweep =
      db.Prepare("INSERT INTO sweeps (id, name, spec, created_at) VALUES (?1, ?1, x'', 0)");
  if (!sweep.ok()) return sweep.status();
  if (absl::Status s = sweep->Bind(1, sweep_id).Run(); !s.ok()) return s;
  absl::StatusOr<Statement> insert = db.Prepare(
      "INSERT INTO jobs (id, sweep_id, idx, spec, state, max_attempts, created_at, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, 1, 3, 0, 0)");
  if (!insert.ok()) return insert.status();
  for (size_t i = 0; i < jobs.size(); ++i) {
    absl::Status s = insert->Bind(1, jobs[i].job_id())
                         .Bind(2, sweep_id)
                         .Bind(3, int64_t{jobs[i].index()})
                         .BindBlobUncopied(4, spec(i))
                         .Run();
    if (!s.ok()) return s;
    insert->Reset();
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InsertJobs(const std::string& db_path, const std::string& sweep_id,
                        const std::vector<v1::JobSpec>& jobs) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(db_path, /*create=*/false);
  if (!db.ok()) return db.status();
  absl::StatusOr<Transaction> transaction = Transaction::Begin(**db, /*write=*/true);
  if (!transaction.ok()) return transaction.status();
  std::string bytes;
  absl::Status inserted = InsertRows(**db, sweep_id, jobs, [&](size_t i) -> absl::string_view {
    bytes.clear();
    internal::SerializeStoredSpec(jobs[i], bytes);
    return bytes;
  });
  if (!inserted.ok()) return inserted;
  return transaction->Commit();
}

absl::StatusOr<absl::Duration> CommitJobsAsWriter(const std::string& db_path,
                                                  const std::string& sweep_id,
                                                  const std::vector<v1::JobSpec>& jobs) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(db_path, /*create=*/false);
  if (!db.ok()) return db.status();
  if (absl::Status s = (*db)->Exec(
          "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA foreign_keys = ON");
      !s.ok()) {
    return s;
  }
  (*db)->DeferCheckpoints();
  std::vector<std::string> specs(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) internal::SerializeStoredSpec(jobs[i], specs[i]);
  const absl::Time start = absl::Now();
  absl::StatusOr<Transaction> transaction = Transaction::Begin(**db, /*write=*/true);
  if (!transaction.ok()) return transaction.status();
  absl::Status inserted =
      InsertRows(**db, sweep_id, jobs, [&](size_t i) -> absl::string_view { return specs[i]; });
  if (!inserted.ok()) return inserted;
  if (absl::Status s = transaction->Commit(); !s.ok()) return s;
  const absl::Duration committed = absl::Now() - start;
  if (absl::Status s = (*db)->Checkpoint(); !s.ok()) return s;
  return committed;
}

absl::Status AppendPoints(const std::string& db_path, const std::vector<v1::MetricPoint>& points,
                          int rounds, int jobs, int points_per_commit) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(db_path, /*create=*/false);
  if (!db.ok()) return db.status();
  // The store's settings for the same file.
  if (absl::Status s = (*db)->Exec(absl::StrCat("PRAGMA synchronous = NORMAL; "
                                                "PRAGMA cache_size = -65536; "
                                                "PRAGMA wal_autocheckpoint = ",
                                                StoreOptions().checkpoint_pages));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<Statement> insert =
      (*db)->Prepare("INSERT INTO metric_reports (job, attempt_id, points) VALUES (?1, 1, ?2)");
  if (!insert.ok()) return insert.status();
  // Each round's report, encoded before the clock matters as little as the rows do: SQLite's
  // share is the insert.
  std::vector<std::string> reports;
  reports.reserve(rounds);
  std::vector<v1::MetricPoint> shifted = points;
  for (int round = 0; round < rounds; ++round) {
    for (size_t i = 0; i < points.size(); ++i) {
      shifted[i].set_step(points[i].step() + int64_t{round} * 1'000'000);
    }
    reports.push_back(internal::EncodeMetricBatch(shifted));
  }
  int in_transaction = 0;
  if (absl::Status s = (*db)->Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  for (int round = 0; round < rounds; ++round) {
    absl::Status s = insert->Bind(1, int64_t{1 + round % jobs}).BindBlob(2, reports[round]).Run();
    if (!s.ok()) return s;
    insert->Reset();
    in_transaction += static_cast<int>(points.size());
    if (in_transaction >= points_per_commit) {
      if (absl::Status c = (*db)->Exec("COMMIT; BEGIN IMMEDIATE"); !c.ok()) return c;
      in_transaction = 0;
    }
  }
  return (*db)->Exec("COMMIT");
}

absl::StatusOr<int64_t> ReadSeries(const std::string& db_path, int64_t job,
                                   const std::string& name) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(db_path, /*create=*/false);
  if (!db.ok()) return db.status();
  absl::StatusOr<Statement> rows =
      (*db)->Prepare("SELECT points FROM metric_reports WHERE job = ?1 ORDER BY rowid");
  if (!rows.ok()) return rows.status();
  rows->Bind(1, job);
  int64_t n = 0;
  v1::MetricBatch batch;
  absl::Status read = rows->ForEachRow([&](const Statement& row) {
    const absl::string_view bytes = row.Blob(0);
    if (!batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::DataLossError("corrupt report");
    }
    for (const v1::MetricPoint& point : batch.points()) n += point.name() == name;
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  return n;
}

}  // namespace ablate::coordinator::floor
