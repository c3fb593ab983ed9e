#include "coordinator/store/schema.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/store/metric_table.h"

namespace ablate::coordinator::internal {
namespace {

// Messages are stored as serialized protos (spec, info, exit) beside the columns queries
// filter or sort on. States are the proto enums' numbers; times are Unix microseconds.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE sweeps (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  spec BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  sweep_id TEXT NOT NULL REFERENCES sweeps (id),
  idx INTEGER NOT NULL,
  spec BLOB NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  current_attempt_id INTEGER NOT NULL DEFAULT 0,
  worker_id TEXT NOT NULL DEFAULT '',
  step INTEGER NOT NULL DEFAULT 0,
  last_loss REAL,
  final_eval_loss REAL,
  message TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_by_sweep ON jobs (sweep_id, idx);
CREATE INDEX jobs_by_state ON jobs (state);
-- Jobs per sweep and state. CreateSweep counts a new sweep's jobs; the trigger moves a job
-- between counts in the same transaction as its change of state. Reading a sweep's counts is
-- then a few rows, where counting its jobs would scan 100,000 of them.
CREATE TABLE sweep_counts (
  sweep_id TEXT NOT NULL REFERENCES sweeps (id),
  state INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (sweep_id, state)
) WITHOUT ROWID;
CREATE TRIGGER jobs_move_count AFTER UPDATE OF state ON jobs WHEN old.state <> new.state
BEGIN
  UPDATE sweep_counts SET n = n - 1 WHERE sweep_id = old.sweep_id AND state = old.state;
  INSERT INTO sweep_counts (sweep_id, state, n) VALUES (new.sweep_id, new.state, 1)
    ON CONFLICT (sweep_id, state) DO UPDATE SET n = n + 1;
END;
CREATE TABLE attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES jobs (id),
  worker_id TEXT NOT NULL,
  state INTEGER NOT NULL,
  exit BLOB,
  started_at INTEGER NOT NULL,
  ended_at INTEGER
);
CREATE INDEX attempts_by_job ON attempts (job_id, id);
CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  info BLOB NOT NULL,
  connected INTEGER NOT NULL,
  connected_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL
);
)sql";

// Acknowledged reports, provenance, and versions that survive restarts. `attempts.sequence` is
// the highest report sequence committed of the attempt (Store's dedup key and Welcome.acks);
// `meta.version` the store's version, bumped by every group commit.
constexpr char kSchemaV2[] = R"sql(
ALTER TABLE attempts ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN provenance BLOB;
CREATE TABLE meta (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  version INTEGER NOT NULL
);
INSERT INTO meta (id, version) VALUES (0, 0);
)sql";

// Jobs an update of their sweep left out of its spec (Job.dropped). Version 3 is the metric
// table's layout v2 (MetricTable::kSchemaV2).
constexpr char kSchemaV4[] = R"sql(
ALTER TABLE jobs ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;
)sql";

// The newest eval/loss of a job (Job.last_eval_loss), so a run's progress shows its evaluations.
constexpr char kSchemaV5[] = R"sql(
ALTER TABLE jobs ADD COLUMN last_eval_loss REAL;
)sql";

// The log tail of each job's newest ended attempt, as its worker last sent it (a serialized
// v1.JobLog), so that an ended job's log outlives a restart of the coordinator; running
// attempts' tails stay in memory (LogTails). One row per job, replaced by a newer attempt's:
// the store holds at most one tail of at most kMaxStoredLogBytes per job.
constexpr char kSchemaV6[] = R"sql(
CREATE TABLE job_logs (
  job_id TEXT PRIMARY KEY REFERENCES jobs (id),
  attempt_id INTEGER NOT NULL,
  log BLOB NOT NULL
);
)sql";

// Jobs an update dropped are counted apart from the sweep's cells (JobCounts.dropped): their
// sweep_counts rows are keyed by the negated state, so that a sweep's counts stay a few rows.
// The trigger moves a job between counts when its state or its flag changes; the counts are
// recounted once from the jobs, which version 4 onwards may have dropped.
constexpr char kSchemaV7[] = R"sql(
DROP TRIGGER jobs_move_count;
CREATE TRIGGER jobs_move_count AFTER UPDATE OF state, dropped ON jobs
  WHEN old.state <> new.state OR old.dropped <> new.dropped
BEGIN
  UPDATE sweep_counts SET n = n - 1 WHERE sweep_id = old.sweep_id
    AND state = CASE WHEN old.dropped THEN -old.state ELSE old.state END;
  INSERT INTO sweep_counts (sweep_id, state, n)
    VALUES (new.sweep_id, CASE WHEN new.dropped THEN -new.state ELSE new.state END, 1)
    ON CONFLICT (sweep_id, state) DO UPDATE SET n = n + 1;
END;
DELETE FROM sweep_counts;
INSERT INTO sweep_counts (sweep_id, state, n)
  SELECT sweep_id, CASE WHEN dropped THEN -state ELSE state END, COUNT(*) FROM jobs
  GROUP BY 1, 2;
)sql";

// Stored facts about attempts, where readers used to infer them.
// `jobs.uncounted_attempts` (Job.uncounted_attempts): the attempts not charged against the
// job's max_attempts, which used to grow by one for each instead. Older rows keep that grown
// max_attempts with 0 here, which bounds their retries as before (attempts < max_attempts).
// `attempts.never_started` (Attempt.never_started): the worker refused the attempt before
// starting its trainer. Older rows are filled from what every refusal's reason opened with
// until the worker said so itself, "not started: " (ExitStatus.reason, inside the stored exit).
constexpr char kSchemaV8[] = R"sql(
ALTER TABLE jobs ADD COLUMN uncounted_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN never_started INTEGER NOT NULL DEFAULT 0;
UPDATE attempts SET never_started = 1 WHERE instr(exit, CAST('not started: ' AS BLOB)) > 0;
)sql";

// Job logs keyed by attempt: the tails of each job's newest kStoredLogsPerJob ended attempts
// (store.h), where version 6 kept the newest one's, so that a failed attempt's lines outlive the
// retry that replaced it (`ablate log --attempt`). The rows version 6 kept move over as they are.
constexpr char kSchemaV9[] = R"sql(
CREATE TABLE attempt_logs (
  job_id TEXT NOT NULL REFERENCES jobs (id),
  attempt_id INTEGER NOT NULL,
  log BLOB NOT NULL,
  PRIMARY KEY (job_id, attempt_id)
) WITHOUT ROWID;
INSERT INTO attempt_logs (job_id, attempt_id, log) SELECT job_id, attempt_id, log FROM job_logs;
DROP TABLE job_logs;
)sql";

// Migration i brings version i to version i + 1. Append only: a released migration never
// changes, since files written by that release have already run it.
const std::vector<std::string>& Migrations() {
  static const auto* migrations = new std::vector<std::string>{
      absl::StrCat(kSchemaV1, MetricTable::kSchemaV1),
      kSchemaV2,
      MetricTable::kSchemaV2,
      kSchemaV4,
      kSchemaV5,
      kSchemaV6,
      kSchemaV7,
      kSchemaV8,
      kSchemaV9,
  };
  return *migrations;
}

}  // namespace

int CurrentSchemaVersion() { return static_cast<int>(Migrations().size()); }

absl::StatusOr<int> SchemaVersion(Db& db) {
  absl::StatusOr<Statement> query = db.Prepare("PRAGMA user_version");
  if (!query.ok()) return query.status();
  absl::StatusOr<bool> row = query->Step();
  if (!row.ok()) return row.status();
  return static_cast<int>(query->Int(0));
}

absl::Status Migrate(Db& db) { return Migrate(db, CurrentSchemaVersion()); }

absl::Status Migrate(Db& db, int to_version) {
  absl::StatusOr<int> version = SchemaVersion(db);
  if (!version.ok()) return version.status();
  if (*version > CurrentSchemaVersion()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the database has schema version ", *version, "; this binary knows up to ",
                     CurrentSchemaVersion(), " (upgrade ablate-coordinator)"));
  }
  for (int v = *version; v < std::min(to_version, CurrentSchemaVersion()); ++v) {
    absl::StatusOr<Transaction> transaction = Transaction::Begin(db, /*write=*/true);
    if (!transaction.ok()) return transaction.status();
    // user_version lives in the file's header page, so it commits with the migration.
    absl::Status step = db.Exec(absl::StrCat(Migrations()[v], "PRAGMA user_version = ", v + 1));
    if (!step.ok()) return step;
    if (absl::Status commit = transaction->Commit(); !commit.ok()) return commit;
  }
  return absl::OkStatus();
}

}  // namespace ablate::coordinator::internal
