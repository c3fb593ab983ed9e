// The attempt lifecycle (start, running, metrics, end, cancel) and metric reads of SqliteStore.
// Every report names an attempt and passes the fence below before it changes anything.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/job_state.h"
#include "coordinator/store/metric_table.h"
#include "coordinator/store/rows.h"
#include "coordinator/store/sqlite_store.h"

namespace ablate::coordinator {

using internal::Db;
using internal::JobRow;
using internal::LoadJob;
using internal::Statement;

namespace {

// The fence: a report counts only for the job's current attempt while the job is ASSIGNED or
// RUNNING. A late report from a worker that lost its lease, or one after the job ended, is
// refused before it changes anything (save a lost attempt's points: AppendStaleMetrics).
absl::Status CheckLive(const JobRow& job, const std::string& job_id, uint64_t attempt_id) {
  if (job.current_attempt_id != attempt_id ||
      (job.state != v1::JOB_STATE_ASSIGNED && job.state != v1::JOB_STATE_RUNNING)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, ": attempt ", attempt_id, " is not live (current attempt ",
                     job.current_attempt_id, ", job ", v1::JobState_Name(job.state), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StoredSequence(Db& db, uint64_t attempt_id) {
  absl::StatusOr<Statement> query = db.Prepare("SELECT sequence FROM attempts WHERE id = ?1");
  if (!query.ok()) return query.status();
  absl::StatusOr<bool> found = query->Bind(1, static_cast<int64_t>(attempt_id)).Step();
  if (!found.ok()) return found.status();
  return *found ? static_cast<uint64_t>(query->Int(0)) : 0;
}

// The job a report names, from the writer's cache or, on a miss, from its row.
absl::StatusOr<internal::ReportCache::Entry*> CachedJob(Db& db, const std::string& job_id,
                                                        internal::Changes& changes) {
  if (internal::ReportCache::Entry* entry = changes.cache().Find(job_id)) return entry;
  absl::StatusOr<JobRow> job = LoadJob(db, job_id);
  if (!job.ok()) return job.status();
  absl::StatusOr<uint64_t> sequence = StoredSequence(db, job->current_attempt_id);
  if (!sequence.ok()) return sequence.status();
  // This group's sequences are written when it commits: count them too.
  const uint64_t applied =
      std::max(*sequence, changes.SequenceOf(job->current_attempt_id).value_or(0));
  return &changes.cache().Put(
      job_id, {job->rowid, job->state, job->current_attempt_id, job->sweep_id, applied});
}

// A report that passed the checks: the job it names, or nothing when it is a resend of a
// report already applied (answered OK, changing nothing).
using CheckedReport = std::optional<JobRow>;

// Loads the job a report names and checks, in this order: the job exists; the report was not
// applied before (its sequence is above the attempt's highest, committed or earlier in this
// group), so a resend is never refused by the fence after its first copy ended the attempt;
// the attempt is live.
absl::StatusOr<CheckedReport> CheckReport(Db& db, const ReportKey& report,
                                          internal::Changes& changes) {
  absl::StatusOr<internal::ReportCache::Entry*> entry = CachedJob(db, report.job_id, changes);
  if (!entry.ok()) return entry.status();
  const internal::ReportCache::Entry& job = **entry;
  if (report.sequence != 0) {
    uint64_t applied = job.sequence;
    if (report.attempt_id != job.current_attempt_id) {  // a report of an older attempt
      absl::StatusOr<uint64_t> stored = StoredSequence(db, report.attempt_id);
      if (!stored.ok()) return stored.status();
      applied = std::max(*stored, changes.SequenceOf(report.attempt_id).value_or(0));
    }
    if (report.sequence <= applied) return CheckedReport();
  }
  JobRow row{job.rowid, job.state, job.current_attempt_id, job.sweep_id};
  if (absl::Status live = CheckLive(row, report.job_id, report.attempt_id); !live.ok()) {
    return live;
  }
  return CheckedReport(std::move(row));
}

// Records a report's sequence once its writes are done. `row_changed`: the write changed the
// job's state or attempt, so the cache forgets it (it reloads from the row, and the sequence
// from this group's changes, when next needed).
void Applied(const ReportKey& report, internal::Changes& changes, bool row_changed) {
  if (report.sequence != 0) changes.Sequence(report.attempt_id, report.sequence);
  if (row_changed) {
    changes.cache().Forget(report.job_id);
  } else if (internal::ReportCache::Entry* entry = changes.cache().Find(report.job_id);
             entry != nullptr && entry->current_attempt_id == report.attempt_id) {
    entry->sequence = std::max(entry->sequence, report.sequence);
  }
}

absl::Status SetAttemptState(Db& db, uint64_t attempt_id, v1::AttemptState state) {
  absl::StatusOr<Statement> update = db.Prepare("UPDATE attempts SET state = ?2 WHERE id = ?1");
  if (!update.ok()) return update.status();
  return update->Bind(1, static_cast<int64_t>(attempt_id)).Bind(2, int64_t{state}).Run();
}

absl::Status EndAttemptRow(Db& db, uint64_t attempt_id, v1::AttemptState state,
                           const v1::ExitStatus* exit, bool never_started, int64_t now) {
  absl::StatusOr<Statement> update = db.Prepare(
      "UPDATE attempts SET state = ?2, exit = ?3, ended_at = ?4, never_started = ?5 WHERE id = ?1");
  if (!update.ok()) return update.status();
  update->Bind(1, static_cast<int64_t>(attempt_id))
      .Bind(2, int64_t{state})
      .Bind(4, now)
      .Bind(5, int64_t{never_started ? 1 : 0});
  if (exit != nullptr) update->BindBlob(3, exit->SerializeAsString());
  return update->Run();
}

// Moves the job to `state` with `message`; final_eval_loss is kept when not given. `uncounted`
// counts the ended attempt among the job's uncounted_attempts, out of its budget.
absl::Status EndJobRow(Db& db, int64_t rowid, v1::JobState state, const std::string& message,
                       std::optional<double> final_eval_loss, bool uncounted, int64_t now) {
  absl::StatusOr<Statement> update = db.Prepare(
      "UPDATE jobs SET state = ?2, message = ?3, final_eval_loss = COALESCE(?4, "
      "final_eval_loss), updated_at = ?5, uncounted_attempts = uncounted_attempts + ?6 "
      "WHERE rowid = ?1");
  if (!update.ok()) return update.status();
  return update->Bind(1, rowid)
      .Bind(2, int64_t{state})
      .Bind(3, message)
      .Bind(4, final_eval_loss)
      .Bind(5, now)
      .Bind(6, int64_t{uncounted ? 1 : 0})
      .Run();
}

// The points of a LOST attempt: its worker lost the lease (stalled, or cut off) while its trainer
// ran on and wrote checkpoints, which the next attempt resumes from. Dropping them would leave
// the job's curves a hole from where the coordinator lost sight of the run to where the next
// attempt resumed. Kept (MetricTable::Read lets the newest value of a step win), and the job's
// progress moves forward from them, never back. Anything but points (the attempt's state, its
// end) stays fenced, as do the points of an attempt that ended on its own. `not_live`,
// CheckLive's refusal, is the answer for those, and for an attempt that is not this job's.
absl::Status AppendStaleMetrics(Db& db, const ReportKey& report, const v1::MetricBatch& batch,
                                internal::Changes& changes, const absl::Status& not_live) {
  absl::StatusOr<Statement> query = db.Prepare(
      "SELECT j.rowid, j.sweep_id, j.step FROM attempts a JOIN jobs j ON j.id = a.job_id "
      "WHERE a.id = ?1 AND a.job_id = ?2 AND a.state = ?3");
  if (!query.ok()) return query.status();
  absl::StatusOr<bool> found = query->Bind(1, static_cast<int64_t>(report.attempt_id))
                                   .Bind(2, report.job_id)
                                   .Bind(3, int64_t{v1::ATTEMPT_STATE_LOST})
                                   .Step();
  if (!found.ok()) return found.status();
  if (!*found) return not_live;
  const int64_t rowid = query->Int(0), step = query->Int(2);
  const std::string sweep_id = query->Text(1);
  if (batch.points().empty()) return absl::OkStatus();
  if (absl::Status append = internal::MetricTable(db).Append(rowid, report.attempt_id, batch);
      !append.ok()) {
    return append;
  }
  const bool forward = std::any_of(batch.points().begin(), batch.points().end(),
                                   [step](const v1::MetricPoint& p) { return p.step() > step; });
  if (forward) changes.Progress(rowid, sweep_id, report.job_id, batch.points());
  if (report.sequence != 0) changes.Sequence(report.attempt_id, report.sequence);
  return absl::OkStatus();
}

bool IsEndedAttempt(v1::AttemptState state) {
  return state == v1::ATTEMPT_STATE_SUCCEEDED || state == v1::ATTEMPT_STATE_FAILED ||
         state == v1::ATTEMPT_STATE_CANCELLED || state == v1::ATTEMPT_STATE_LOST;
}

// Starts a new attempt of the PENDING job `job_id` on `worker_id`, filling `attempt`.
// FailedPrecondition (and nothing changes) when the job is not PENDING; NotFound when unknown.
absl::Status StartAttemptRow(Db& db, const std::string& job_id, const std::string& worker_id,
                             int64_t now, v1::Attempt& attempt, internal::Changes& changes) {
  absl::StatusOr<JobRow> job = LoadJob(db, job_id);
  if (!job.ok()) return job.status();
  if (job->state != v1::JOB_STATE_PENDING) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is ", v1::JobState_Name(job->state), ", not PENDING"));
  }
  absl::StatusOr<Statement> insert = db.Prepare(
      "INSERT INTO attempts (job_id, worker_id, state, started_at) VALUES (?1, ?2, ?3, ?4)");
  if (!insert.ok()) return insert.status();
  absl::Status inserted = insert->Bind(1, job_id)
                              .Bind(2, worker_id)
                              .Bind(3, int64_t{v1::ATTEMPT_STATE_ASSIGNED})
                              .Bind(4, now)
                              .Run();
  if (!inserted.ok()) return inserted;
  attempt.set_id(static_cast<uint64_t>(db.LastInsertRowid()));
  attempt.set_job_id(job_id);
  attempt.set_worker_id(worker_id);
  attempt.set_state(v1::ATTEMPT_STATE_ASSIGNED);
  *attempt.mutable_started_at() = internal::TimestampOf(now);
  absl::StatusOr<Statement> update = db.Prepare(
      "UPDATE jobs SET state = ?2, attempts = attempts + 1, current_attempt_id = ?3, "
      "worker_id = ?4, message = '', provenance = NULL, updated_at = ?5 WHERE rowid = ?1");
  if (!update.ok()) return update.status();
  absl::Status updated = update->Bind(1, job->rowid)
                             .Bind(2, int64_t{v1::JOB_STATE_ASSIGNED})
                             .Bind(3, static_cast<int64_t>(attempt.id()))
                             .Bind(4, worker_id)
                             .Bind(5, now)
                             .Run();
  if (!updated.ok()) return updated;
  changes.Job(job->rowid, job->sweep_id);
  changes.cache().Forget(job_id);  // a new current attempt: what the fence knew is stale
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Attempt> SqliteStore::StartAttempt(const std::string& job_id,
                                                      const std::string& worker_id) {
  const int64_t now = NowMicros();
  v1::Attempt attempt;
  absl::Status status = Write([&](Db& db, internal::Changes& changes) {
    return StartAttemptRow(db, job_id, worker_id, now, attempt, changes);
  });
  if (!status.ok()) return status;
  return attempt;
}

absl::StatusOr<std::vector<v1::Attempt>> SqliteStore::StartAttempts(
    const std::vector<AttemptStart>& starts) {
  const int64_t now = NowMicros();
  std::vector<v1::Attempt> attempts(starts.size());
  absl::Status status = Write(
      [&](Db& db, internal::Changes& changes) -> absl::Status {
        for (size_t i = 0; i < starts.size(); ++i) {
          absl::Status started =
              StartAttemptRow(db, starts[i].job_id, starts[i].worker_id, now, attempts[i], changes);
          // A job cancelled since it was queued: its start is skipped, the others go on.
          if (absl::IsFailedPrecondition(started) || absl::IsNotFound(started)) {
            attempts[i] = v1::Attempt();
            continue;
          }
          if (!started.ok()) return started;
        }
        return absl::OkStatus();
      },
      static_cast<int64_t>(starts.size()));
  if (!status.ok()) return status;
  return attempts;
}

SqliteStore::Body SqliteStore::MarkRunningBody(ReportKey report,
                                               std::optional<v1::Provenance> provenance) {
  return [this, report = std::move(report), provenance = std::move(provenance)](
             Db& db, internal::Changes& changes) -> absl::Status {
    absl::StatusOr<CheckedReport> checked = CheckReport(db, report, changes);
    if (!checked.ok()) return checked.status();
    if (!checked->has_value()) return absl::OkStatus();  // a resend
    const JobRow& job = **checked;
    // A repeated report of a RUNNING attempt changes nothing but a provenance it brings.
    if (job.state == v1::JOB_STATE_RUNNING && !provenance.has_value()) {
      Applied(report, changes, /*row_changed=*/false);
      return absl::OkStatus();
    }
    absl::StatusOr<Statement> update = db.Prepare(
        "UPDATE jobs SET state = ?2, provenance = COALESCE(?3, provenance), updated_at = ?4 "
        "WHERE rowid = ?1");
    if (!update.ok()) return update.status();
    update->Bind(1, job.rowid).Bind(2, int64_t{v1::JOB_STATE_RUNNING}).Bind(4, NowMicros());
    if (provenance.has_value()) update->BindBlob(3, provenance->SerializeAsString());
    if (absl::Status updated = update->Run(); !updated.ok()) return updated;
    absl::Status attempt = SetAttemptState(db, report.attempt_id, v1::ATTEMPT_STATE_RUNNING);
    if (!attempt.ok()) return attempt;
    changes.Job(job.rowid, job.sweep_id);
    Applied(report, changes, /*row_changed=*/true);
    return absl::OkStatus();
  };
}

absl::Status SqliteStore::MarkRunning(const std::string& job_id, uint64_t attempt_id) {
  return Write(MarkRunningBody(ReportKey{job_id, attempt_id, 0}, std::nullopt));
}

void SqliteStore::MarkRunningAsync(const ReportKey& report,
                                   std::optional<v1::Provenance> provenance, WriteDone done) {
  writer_.Submit(MarkRunningBody(report, std::move(provenance)), 1, std::move(done));
}

namespace {

v1::MetricBatch ToBatch(std::vector<v1::MetricPoint> points) {
  v1::MetricBatch batch;
  batch.mutable_points()->Reserve(static_cast<int>(points.size()));
  for (v1::MetricPoint& point : points) *batch.add_points() = std::move(point);
  return batch;
}

int64_t RowsOf(const v1::MetricBatch& batch) { return std::max<int64_t>(1, batch.points_size()); }

}  // namespace

SqliteStore::Body SqliteStore::AppendMetricsBody(ReportKey report, v1::MetricBatch batch) {
  return [report = std::move(report), batch = std::move(batch)](
             Db& db, internal::Changes& changes) -> absl::Status {
    const auto& points = batch.points();
    absl::StatusOr<CheckedReport> checked = CheckReport(db, report, changes);
    if (absl::IsFailedPrecondition(checked.status())) {
      return AppendStaleMetrics(db, report, batch, changes, checked.status());
    }
    if (!checked.ok()) return checked.status();
    if (!checked->has_value()) return absl::OkStatus();  // a resend
    const JobRow& job = **checked;
    if (!points.empty()) {
      absl::Status append = internal::MetricTable(db).Append(job.rowid, report.attempt_id, batch);
      if (!append.ok()) return append;
      // The job shows where this report leaves the run: its latest step, and the loss there.
      changes.Progress(job.rowid, job.sweep_id, report.job_id, points);
    }
    Applied(report, changes, /*row_changed=*/false);
    return absl::OkStatus();
  };
}

absl::Status SqliteStore::AppendMetrics(const std::string& job_id, uint64_t attempt_id,
                                        const std::vector<v1::MetricPoint>& points) {
  v1::MetricBatch batch = ToBatch(points);
  const int64_t rows = RowsOf(batch);
  return Write(AppendMetricsBody(ReportKey{job_id, attempt_id, 0}, std::move(batch)), rows);
}

void SqliteStore::AppendMetricsAsync(const ReportKey& report, std::vector<v1::MetricPoint> points,
                                     WriteDone done) {
  AppendMetricsAsync(report, ToBatch(std::move(points)), std::move(done));
}

void SqliteStore::AppendMetricsAsync(const ReportKey& report, v1::MetricBatch batch,
                                     WriteDone done) {
  const int64_t rows = RowsOf(batch);
  writer_.Submit(AppendMetricsBody(report, std::move(batch)), rows, std::move(done));
}

SqliteStore::Body SqliteStore::EndAttemptBody(ReportKey report, AttemptEnd end) {
  return [this, report = std::move(report), end = std::move(end)](
             Db& db, internal::Changes& changes) -> absl::Status {
    if (!IsEndedAttempt(end.attempt_state)) {
      return absl::InvalidArgumentError(
          absl::StrCat("an attempt cannot end in ", v1::AttemptState_Name(end.attempt_state)));
    }
    if (end.job_state != v1::JOB_STATE_PENDING && !JobStateHasEnded(end.job_state)) {
      return absl::InvalidArgumentError(absl::StrCat("an attempt's end cannot move its job to ",
                                                     v1::JobState_Name(end.job_state)));
    }
    absl::StatusOr<CheckedReport> checked = CheckReport(db, report, changes);
    if (!checked.ok()) return checked.status();
    if (!checked->has_value()) return absl::OkStatus();  // a resend
    const JobRow& job = **checked;
    const int64_t now = NowMicros();
    if (absl::Status ended = EndAttemptRow(db, report.attempt_id, end.attempt_state, &end.exit,
                                           end.never_started, now);
        !ended.ok()) {
      return ended;
    }
    absl::Status moved = EndJobRow(db, job.rowid, end.job_state, end.message, end.final_eval_loss,
                                   end.uncounted, now);
    if (!moved.ok()) return moved;
    changes.Job(job.rowid, job.sweep_id);
    if (end.job_state == v1::JOB_STATE_PENDING) changes.Pending();
    Applied(report, changes, /*row_changed=*/true);
    return absl::OkStatus();
  };
}

absl::Status SqliteStore::EndAttempt(const std::string& job_id, uint64_t attempt_id,
                                     v1::AttemptState attempt_state, const v1::ExitStatus& exit,
                                     v1::JobState job_state, const std::string& message,
                                     std::optional<double> final_eval_loss) {
  return Write(
      EndAttemptBody(ReportKey{job_id, attempt_id, 0},
                     AttemptEnd{attempt_state, exit, job_state, message, final_eval_loss}));
}

void SqliteStore::EndAttemptAsync(const ReportKey& report, AttemptEnd end, WriteDone done) {
  writer_.Submit(EndAttemptBody(report, std::move(end)), 1, std::move(done));
}

absl::StatusOr<uint64_t> SqliteStore::CommittedSequence(uint64_t attempt_id) {
  uint64_t out = 0;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    absl::StatusOr<Statement> query = db.Prepare("SELECT sequence FROM attempts WHERE id = ?1");
    if (!query.ok()) return query.status();
    absl::StatusOr<bool> found = query->Bind(1, static_cast<int64_t>(attempt_id)).Step();
    if (!found.ok()) return found.status();
    if (!*found) return absl::NotFoundError(absl::StrCat("unknown attempt ", attempt_id));
    out = static_cast<uint64_t>(query->Int(0));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::vector<v1::Job>> SqliteStore::CancelJobs(
    const std::vector<std::string>& job_ids, const std::string& message) {
  const int64_t now = NowMicros();
  std::vector<v1::Job> before;
  absl::Status status = Write(
      [&](Db& db, internal::Changes& changes) -> absl::Status {
        before.clear();
        // An unknown id refuses the whole call after earlier jobs were cancelled: undo them.
        absl::StatusOr<internal::Savepoint> savepoint = internal::Savepoint::Begin(db);
        if (!savepoint.ok()) return savepoint.status();
        std::vector<std::pair<int64_t, std::string>> changed;  // rowid, sweep id
        absl::StatusOr<Statement> query = db.Prepare(absl::StrCat(
            "SELECT rowid, sweep_id, ", internal::kJobColumns, " FROM jobs WHERE id = ?1"));
        if (!query.ok()) return query.status();
        for (const std::string& job_id : job_ids) {
          absl::StatusOr<bool> found = query->Bind(1, job_id).Step();
          if (!found.ok()) return found.status();
          if (!*found) return absl::NotFoundError(absl::StrCat("unknown job ", job_id));
          const int64_t rowid = query->Int(0);
          std::string sweep_id = query->Text(1);
          absl::StatusOr<v1::Job> job = internal::JobFromRow(*query, /*first_column=*/2);
          query->Reset();
          if (!job.ok()) return job.status();
          if (JobStateHasEnded(job->state())) continue;
          if (job->state() != v1::JOB_STATE_PENDING) {
            absl::Status ended = EndAttemptRow(db, job->current_attempt_id(),
                                               v1::ATTEMPT_STATE_CANCELLED, nullptr, false, now);
            if (!ended.ok()) return ended;
          }
          absl::Status cancelled =
              EndJobRow(db, rowid, v1::JOB_STATE_CANCELLED, message, std::nullopt, false, now);
          if (!cancelled.ok()) return cancelled;
          before.push_back(*std::move(job));
          changed.emplace_back(rowid, std::move(sweep_id));
        }
        if (absl::Status released = savepoint->Release(); !released.ok()) return released;
        for (const auto& [rowid, sweep_id] : changed) changes.Job(rowid, sweep_id);
        for (const v1::Job& job : before) changes.cache().Forget(job.spec().job_id());
        return absl::OkStatus();
      },
      static_cast<int64_t>(job_ids.size()));
  if (!status.ok()) return status;
  return before;
}

absl::StatusOr<std::vector<v1::Attempt>> SqliteStore::ListAttempts(const std::string& job_id) {
  std::vector<v1::Attempt> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    if (absl::StatusOr<JobRow> job = LoadJob(db, job_id); !job.ok()) return job.status();
    absl::StatusOr<Statement> query = db.Prepare(absl::StrCat(
        "SELECT ", internal::kAttemptColumns, " FROM attempts WHERE job_id = ?1 ORDER BY id"));
    if (!query.ok()) return query.status();
    query->Bind(1, job_id);
    return query->ForEachRow([&](const Statement& row) {
      absl::StatusOr<v1::Attempt> attempt = internal::AttemptFromRow(row);
      if (!attempt.ok()) return attempt.status();
      out.push_back(*std::move(attempt));
      return absl::OkStatus();
    });
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::vector<v1::MetricSeries>> SqliteStore::ReadMetrics(
    const std::string& job_id, const std::vector<std::string>& names, int max_points,
    std::vector<std::string>* logged) {
  absl::StatusOr<std::vector<v1::MetricSeries>> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    absl::StatusOr<JobRow> job = LoadJob(db, job_id);
    if (!job.ok()) return job.status();
    out = internal::MetricTable(db).Read(job->rowid, names, max_points, logged);
    return out.status();
  });
  if (!status.ok()) return status;
  return out;
}

}  // namespace ablate::coordinator
