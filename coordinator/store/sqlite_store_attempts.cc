// The attempt lifecycle (start, running, metrics, end, cancel) and metric reads of SqliteStore.
// Every report names an attempt and passes the fence below before it changes anything.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "coordinator/store/metric_table.h"
#include "coordinator/store/rows.h"
#include "coordinator/store/sqlite_store.h"

namespace ablate::coordinator {

using internal::Db;
using internal::Statement;

namespace {

constexpr char kTrainLoss[] = "train/loss";

// A job as a report about one of its attempts needs it.
struct JobRow {
  int64_t rowid = 0;
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  uint64_t current_attempt_id = 0;
};

absl::StatusOr<JobRow> LoadJob(Db& db, const std::string& job_id) {
  absl::StatusOr<Statement> query =
      db.Prepare("SELECT rowid, state, current_attempt_id FROM jobs WHERE id = ?1");
  if (!query.ok()) return query.status();
  absl::StatusOr<bool> found = query->Bind(1, job_id).Step();
  if (!found.ok()) return found.status();
  if (!*found) return absl::NotFoundError(absl::StrCat("unknown job ", job_id));
  return JobRow{query->Int(0), static_cast<v1::JobState>(query->Int(1)),
                static_cast<uint64_t>(query->Int(2))};
}

// The fence: a report counts only for the job's current attempt while the job is ASSIGNED or
// RUNNING. A late report from a worker that lost its lease, or one after the job ended, is
// refused before it changes anything.
absl::StatusOr<JobRow> LoadLiveAttempt(Db& db, const std::string& job_id, uint64_t attempt_id) {
  absl::StatusOr<JobRow> job = LoadJob(db, job_id);
  if (!job.ok()) return job.status();
  if (job->current_attempt_id != attempt_id ||
      (job->state != v1::JOB_STATE_ASSIGNED && job->state != v1::JOB_STATE_RUNNING)) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, ": attempt ", attempt_id, " is not live (current attempt ",
                     job->current_attempt_id, ", job ", v1::JobState_Name(job->state), ")"));
  }
  return job;
}

absl::Status SetAttemptState(Db& db, uint64_t attempt_id, v1::AttemptState state) {
  absl::StatusOr<Statement> update = db.Prepare("UPDATE attempts SET state = ?2 WHERE id = ?1");
  if (!update.ok()) return update.status();
  return update->Bind(1, static_cast<int64_t>(attempt_id)).Bind(2, int64_t{state}).Run();
}

absl::Status EndAttemptRow(Db& db, uint64_t attempt_id, v1::AttemptState state,
                           const v1::ExitStatus* exit, int64_t now) {
  absl::StatusOr<Statement> update =
      db.Prepare("UPDATE attempts SET state = ?2, exit = ?3, ended_at = ?4 WHERE id = ?1");
  if (!update.ok()) return update.status();
  update->Bind(1, static_cast<int64_t>(attempt_id)).Bind(2, int64_t{state}).Bind(4, now);
  if (exit != nullptr) update->BindBlob(3, exit->SerializeAsString());
  return update->Run();
}

// Moves the job to `state` with `message`; final_eval_loss is kept when not given.
absl::Status EndJobRow(Db& db, int64_t rowid, v1::JobState state, const std::string& message,
                       std::optional<double> final_eval_loss, int64_t now) {
  absl::StatusOr<Statement> update = db.Prepare(
      "UPDATE jobs SET state = ?2, message = ?3, final_eval_loss = COALESCE(?4, "
      "final_eval_loss), updated_at = ?5 WHERE rowid = ?1");
  if (!update.ok()) return update.status();
  return update->Bind(1, rowid)
      .Bind(2, int64_t{state})
      .Bind(3, message)
      .Bind(4, final_eval_loss)
      .Bind(5, now)
      .Run();
}

bool IsEndedAttempt(v1::AttemptState state) {
  return state == v1::ATTEMPT_STATE_SUCCEEDED || state == v1::ATTEMPT_STATE_FAILED ||
         state == v1::ATTEMPT_STATE_CANCELLED || state == v1::ATTEMPT_STATE_LOST;
}

// Starts a new attempt of the PENDING job `job_id` on `worker_id`, filling `attempt`.
// FailedPrecondition (and nothing changes) when the job is not PENDING; NotFound when unknown.
absl::Status StartAttemptRow(Db& db, const std::string& job_id, const std::string& worker_id,
                             int64_t now, v1::Attempt& attempt) {
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
      "worker_id = ?4, message = '', updated_at = ?5 WHERE rowid = ?1");
  if (!update.ok()) return update.status();
  return update->Bind(1, job->rowid)
      .Bind(2, int64_t{v1::JOB_STATE_ASSIGNED})
      .Bind(3, static_cast<int64_t>(attempt.id()))
      .Bind(4, worker_id)
      .Bind(5, now)
      .Run();
}

}  // namespace

absl::StatusOr<v1::Attempt> SqliteStore::StartAttempt(const std::string& job_id,
                                                      const std::string& worker_id) {
  const int64_t now = NowMicros();
  v1::Attempt attempt;
  absl::Status status =
      Write([&](Db& db) { return StartAttemptRow(db, job_id, worker_id, now, attempt); });
  if (!status.ok()) return status;
  return attempt;
}

absl::StatusOr<std::vector<v1::Attempt>> SqliteStore::StartAttempts(
    const std::vector<AttemptStart>& starts) {
  const int64_t now = NowMicros();
  std::vector<v1::Attempt> attempts(starts.size());
  absl::Status status = Write([&](Db& db) -> absl::Status {
    for (size_t i = 0; i < starts.size(); ++i) {
      absl::Status started =
          StartAttemptRow(db, starts[i].job_id, starts[i].worker_id, now, attempts[i]);
      // A job cancelled since it was queued: its start is skipped, the others go on.
      if (absl::IsFailedPrecondition(started) || absl::IsNotFound(started)) {
        attempts[i] = v1::Attempt();
        continue;
      }
      if (!started.ok()) return started;
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return attempts;
}

absl::Status SqliteStore::SetPendingMessages(const std::vector<std::string>& job_ids,
                                             const std::string& message) {
  return Write([&](Db& db) -> absl::Status {
    absl::StatusOr<Statement> update =
        db.Prepare("UPDATE jobs SET message = ?2 WHERE id = ?1 AND state = ?3");
    if (!update.ok()) return update.status();
    for (const std::string& job_id : job_ids) {
      absl::Status updated =
          update->Bind(1, job_id).Bind(2, message).Bind(3, int64_t{v1::JOB_STATE_PENDING}).Run();
      if (!updated.ok()) return updated;
      update->Reset();
    }
    return absl::OkStatus();
  });
}

absl::Status SqliteStore::MarkRunning(const std::string& job_id, uint64_t attempt_id) {
  const int64_t now = NowMicros();
  return Write([&](Db& db) -> absl::Status {
    absl::StatusOr<JobRow> job = LoadLiveAttempt(db, job_id, attempt_id);
    if (!job.ok()) return job.status();
    if (job->state == v1::JOB_STATE_RUNNING) return absl::OkStatus();  // a repeated report
    absl::StatusOr<Statement> update =
        db.Prepare("UPDATE jobs SET state = ?2, updated_at = ?3 WHERE rowid = ?1");
    if (!update.ok()) return update.status();
    absl::Status updated =
        update->Bind(1, job->rowid).Bind(2, int64_t{v1::JOB_STATE_RUNNING}).Bind(3, now).Run();
    if (!updated.ok()) return updated;
    return SetAttemptState(db, attempt_id, v1::ATTEMPT_STATE_RUNNING);
  });
}

absl::Status SqliteStore::AppendMetrics(const std::string& job_id, uint64_t attempt_id,
                                        const std::vector<v1::MetricPoint>& points) {
  const int64_t now = NowMicros();
  return Write([&](Db& db) -> absl::Status {
    absl::StatusOr<JobRow> job = LoadLiveAttempt(db, job_id, attempt_id);
    if (!job.ok()) return job.status();
    if (points.empty()) return absl::OkStatus();
    if (absl::Status append = internal::MetricTable(db).Append(job->rowid, attempt_id, points);
        !append.ok()) {
      return append;
    }
    // The job shows where this report leaves the run: its latest step, and the loss there.
    int64_t step = points.front().step();
    const v1::MetricPoint* loss = nullptr;
    for (const v1::MetricPoint& point : points) {
      step = std::max(step, point.step());
      if (point.name() == kTrainLoss && (loss == nullptr || point.step() >= loss->step())) {
        loss = &point;
      }
    }
    absl::StatusOr<Statement> update = db.Prepare(
        "UPDATE jobs SET step = ?2, last_loss = COALESCE(?3, last_loss), updated_at = ?4 "
        "WHERE rowid = ?1");
    if (!update.ok()) return update.status();
    return update->Bind(1, job->rowid)
        .Bind(2, step)
        .Bind(3, loss != nullptr ? std::optional<double>(loss->value()) : std::nullopt)
        .Bind(4, now)
        .Run();
  });
}

absl::Status SqliteStore::EndAttempt(const std::string& job_id, uint64_t attempt_id,
                                     v1::AttemptState attempt_state, const v1::ExitStatus& exit,
                                     v1::JobState job_state, const std::string& message,
                                     std::optional<double> final_eval_loss) {
  if (!IsEndedAttempt(attempt_state)) {
    return absl::InvalidArgumentError(
        absl::StrCat("an attempt cannot end in ", v1::AttemptState_Name(attempt_state)));
  }
  if (job_state != v1::JOB_STATE_PENDING && !internal::HasEnded(job_state)) {
    return absl::InvalidArgumentError(
        absl::StrCat("an attempt's end cannot move its job to ", v1::JobState_Name(job_state)));
  }
  const int64_t now = NowMicros();
  return Write([&](Db& db) -> absl::Status {
    absl::StatusOr<JobRow> job = LoadLiveAttempt(db, job_id, attempt_id);
    if (!job.ok()) return job.status();
    if (absl::Status ended = EndAttemptRow(db, attempt_id, attempt_state, &exit, now);
        !ended.ok()) {
      return ended;
    }
    return EndJobRow(db, job->rowid, job_state, message, final_eval_loss, now);
  });
}

absl::StatusOr<std::vector<v1::Job>> SqliteStore::CancelJobs(
    const std::vector<std::string>& job_ids, const std::string& message) {
  const int64_t now = NowMicros();
  std::vector<v1::Job> before;
  absl::Status status = Write([&](Db& db) -> absl::Status {
    absl::StatusOr<Statement> query = db.Prepare(
        absl::StrCat("SELECT rowid, ", internal::kJobColumns, " FROM jobs WHERE id = ?1"));
    if (!query.ok()) return query.status();
    for (const std::string& job_id : job_ids) {
      absl::StatusOr<bool> found = query->Bind(1, job_id).Step();
      if (!found.ok()) return found.status();
      if (!*found) return absl::NotFoundError(absl::StrCat("unknown job ", job_id));
      const int64_t rowid = query->Int(0);
      absl::StatusOr<v1::Job> job = internal::JobFromRow(*query, /*first_column=*/1);
      query->Reset();
      if (!job.ok()) return job.status();
      if (internal::HasEnded(job->state())) continue;
      if (job->state() != v1::JOB_STATE_PENDING) {
        absl::Status ended =
            EndAttemptRow(db, job->current_attempt_id(), v1::ATTEMPT_STATE_CANCELLED, nullptr, now);
        if (!ended.ok()) return ended;
      }
      absl::Status cancelled =
          EndJobRow(db, rowid, v1::JOB_STATE_CANCELLED, message, std::nullopt, now);
      if (!cancelled.ok()) return cancelled;
      before.push_back(*std::move(job));
    }
    return absl::OkStatus();
  });
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
    const std::string& job_id, const std::vector<std::string>& names, int max_points) {
  absl::StatusOr<std::vector<v1::MetricSeries>> out;
  absl::Status status = Read([&](Db& db) -> absl::Status {
    absl::StatusOr<JobRow> job = LoadJob(db, job_id);
    if (!job.ok()) return job.status();
    out = internal::MetricTable(db).Read(job->rowid, names, max_points);
    return out.status();
  });
  if (!status.ok()) return status;
  return out;
}

}  // namespace ablate::coordinator
