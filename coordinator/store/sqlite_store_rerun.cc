// Running cells again: an update of a sweep (new cells added to it), finding sweeps by name,
// and queueing ended jobs again. Part of SqliteStore (sqlite_store.h).
#include "absl/strings/str_cat.h"
#include "coordinator/store/rows.h"
#include "coordinator/store/sqlite_store.h"

namespace ablate::coordinator {

using internal::Db;
using internal::Statement;

namespace {

// SQL: `then` where `condition` holds, else `otherwise`.
std::string When(absl::string_view condition, absl::string_view then, absl::string_view otherwise) {
  return absl::StrCat("CASE WHEN ", condition, " THEN ", then, " ELSE ", otherwise, " END");
}

}  // namespace

absl::Status SqliteStore::AddJobs(const v1::Sweep& sweep, const std::vector<v1::JobSpec>& jobs,
                                  const std::vector<std::string>& dropped, uint32_t max_attempts) {
  const int64_t now = NowMicros();
  internal::SpecRows specs(jobs);
  return Write(
      [&](Db& db, internal::Changes& changes) -> absl::Status {
        // A job id already stored refuses the update after some rows went in: undo them.
        absl::StatusOr<internal::Savepoint> savepoint = internal::Savepoint::Begin(db);
        if (!savepoint.ok()) return savepoint.status();
        absl::StatusOr<Statement> update_spec =
            db.Prepare("UPDATE sweeps SET spec = ?2 WHERE id = ?1");
        if (!update_spec.ok()) return update_spec.status();
        absl::Status updated =
            update_spec->Bind(1, sweep.id()).BindBlob(2, sweep.spec().SerializeAsString()).Run();
        if (!updated.ok()) return updated;
        if (db.Changes() == 0) {
          return absl::NotFoundError(absl::StrCat("unknown sweep ", sweep.id()));
        }
        std::vector<int64_t> rowids;
        absl::Status jobs_inserted =
            internal::InsertPendingJobs(db, sweep.id(), jobs, specs, max_attempts, now, &rowids);
        if (!jobs_inserted.ok()) return jobs_inserted;
        // Jobs whose flag changes are sent to watchers as changed rows. Every flag is cleared,
        // and the jobs an earlier update cancelled before they ran are PENDING again, then
        // `dropped` is marked anew (SET reads the row as it was before the statement).
        const std::string pending = absl::StrCat(int64_t{v1::JOB_STATE_PENDING});
        const std::string cancelled = absl::StrCat(int64_t{v1::JOB_STATE_CANCELLED});
        // A job an update cancelled before it ran (DroppedBeforeItRan), ?2 that message.
        const std::string by_drop = absl::StrCat("(state = ", cancelled, " AND message = ?2)");
        absl::StatusOr<Statement> undrop = db.Prepare(
            absl::StrCat("UPDATE jobs SET dropped = 0, state = ", When(by_drop, pending, "state"),
                         ", message = ", When(by_drop, "''", "message"),
                         ", updated_at = ", When(by_drop, "?3", "updated_at"),
                         " WHERE sweep_id = ?1 AND dropped RETURNING rowid, state"));
        if (!undrop.ok()) return undrop.status();
        undrop->Bind(1, sweep.id()).Bind(2, absl::string_view(kDroppedBeforeItRan)).Bind(3, now);
        bool taken_back = false;  // a job is PENDING again
        absl::Status undropped = undrop->ForEachRow([&](const Statement& row) {
          rowids.push_back(row.Int(0));
          taken_back = taken_back || row.Int(1) == v1::JOB_STATE_PENDING;
          return absl::OkStatus();
        });
        if (!undropped.ok()) return undropped;
        const std::string is_pending = absl::StrCat("state = ", pending);
        absl::StatusOr<Statement> drop = db.Prepare(absl::StrCat(
            "UPDATE jobs SET dropped = 1, state = ", When(is_pending, cancelled, "state"),
            ", message = ", When(is_pending, "?3", "message"),
            ", updated_at = ", When(is_pending, "?4", "updated_at"),
            " WHERE id = ?1 AND sweep_id = ?2 RETURNING rowid"));
        if (!drop.ok()) return drop.status();
        for (const std::string& job_id : dropped) {
          drop->Bind(1, job_id)
              .Bind(2, sweep.id())
              .Bind(3, absl::string_view(kDroppedBeforeItRan))
              .Bind(4, now);
          absl::Status marked = drop->ForEachRow([&](const Statement& row) {
            rowids.push_back(row.Int(0));
            return absl::OkStatus();
          });
          if (!marked.ok()) return marked;
          drop->Reset();
        }
        if (absl::Status released = savepoint->Release(); !released.ok()) return released;
        for (int64_t rowid : rowids) changes.Job(rowid, sweep.id());
        if (!jobs.empty() || taken_back) changes.Pending();
        return absl::OkStatus();
      },
      static_cast<int64_t>(jobs.size() + dropped.size()) + 1, [&] { specs.Serialize(); });
}

absl::StatusOr<std::vector<std::string>> SqliteStore::SweepIdsNamed(const std::string& name) {
  std::vector<std::string> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    absl::StatusOr<Statement> query =
        db.Prepare("SELECT id FROM sweeps WHERE name = ?1 ORDER BY rowid");
    if (!query.ok()) return query.status();
    query->Bind(1, name);
    return query->ForEachRow([&](const Statement& row) {
      out.push_back(row.Text(0));
      return absl::OkStatus();
    });
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::vector<std::string>> SqliteStore::JobIdsEndingWith(const std::string& short_id,
                                                                       int limit) {
  std::vector<std::string> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    // Compared as text, not by LIKE, so no character of the short id is a pattern.
    absl::StatusOr<Statement> query =
        db.Prepare("SELECT id FROM jobs WHERE substr(id, -length(?1) - 1) = '-' || ?1 LIMIT ?2");
    if (!query.ok()) return query.status();
    query->Bind(1, short_id);
    query->Bind(2, int64_t{limit});
    return query->ForEachRow([&](const Statement& row) {
      out.push_back(row.Text(0));
      return absl::OkStatus();
    });
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<RequeueResult> SqliteStore::RequeueJobs(const std::string& sweep_id,
                                                       const std::vector<std::string>& job_ids,
                                                       uint32_t more_attempts) {
  const int64_t now = NowMicros();
  RequeueResult out;
  absl::Status status = Write(
      [&](Db& db, internal::Changes& changes) -> absl::Status {
        out = RequeueResult();
        absl::StatusOr<Statement> sweep = db.Prepare("SELECT 1 FROM sweeps WHERE id = ?1");
        if (!sweep.ok()) return sweep.status();
        absl::StatusOr<bool> known = sweep->Bind(1, sweep_id).Step();
        if (!known.ok()) return known.status();
        if (!*known) return absl::NotFoundError(absl::StrCat("unknown sweep ", sweep_id));
        absl::StatusOr<Statement> query = db.Prepare(absl::StrCat(
            "SELECT rowid, sweep_id, ", internal::kJobColumns, " FROM jobs WHERE id = ?1"));
        if (!query.ok()) return query.status();
        // A job named twice is read again after the first moved it: PENDING, so refused.
        absl::StatusOr<Statement> requeue = db.Prepare(
            "UPDATE jobs SET state = ?2, max_attempts = ?3, uncounted_attempts = attempts, "
            "message = '', worker_id = '', updated_at = ?4 WHERE rowid = ?1");
        if (!requeue.ok()) return requeue.status();
        std::vector<int64_t> rowids;
        for (const std::string& job_id : job_ids) {
          absl::StatusOr<bool> found = query->Bind(1, job_id).Step();
          if (!found.ok()) return found.status();
          auto refuse = [&](std::string reason) {
            v1::RefusedJob& refused = out.refused.emplace_back();
            refused.set_job_id(job_id);
            refused.set_reason(std::move(reason));
          };
          if (!*found || query->Text(1) != sweep_id) {
            query->Reset();
            refuse(absl::StrCat("not a job of sweep ", sweep_id));
            continue;
          }
          const int64_t rowid = query->Int(0);
          absl::StatusOr<v1::Job> job = internal::JobFromRow(*query, /*first_column=*/2);
          query->Reset();
          if (!job.ok()) return job.status();
          if (job->state() == v1::JOB_STATE_SUCCEEDED) {
            refuse("SUCCEEDED: its result stands");
            continue;
          }
          if (job->state() != v1::JOB_STATE_FAILED && job->state() != v1::JOB_STATE_CANCELLED) {
            refuse(absl::StrCat(v1::JobState_Name(job->state()).substr(sizeof("JOB_STATE_") - 1),
                                ": it has not ended"));
            continue;
          }
          absl::Status moved = requeue->Bind(1, rowid)
                                   .Bind(2, int64_t{v1::JOB_STATE_PENDING})
                                   .Bind(3, int64_t{more_attempts})
                                   .Bind(4, now)
                                   .Run();
          if (!moved.ok()) return moved;
          requeue->Reset();
          rowids.push_back(rowid);
          out.requeued.push_back(job->spec());
        }
        for (int64_t rowid : rowids) changes.Job(rowid, sweep_id);
        for (const v1::JobSpec& spec : out.requeued) changes.cache().Forget(spec.job_id());
        if (!rowids.empty()) changes.Pending();
        return absl::OkStatus();
      },
      static_cast<int64_t>(job_ids.size()) + 1);
  if (!status.ok()) return status;
  return out;
}

}  // namespace ablate::coordinator
