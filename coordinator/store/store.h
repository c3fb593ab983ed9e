// Store owns the coordinator's SQLite database: sweeps, jobs, attempts, metric points, ended
// attempts' log tails and workers. It is the coordinator's only durable state: a caller told a
// write succeeded can count on it surviving a crash of the process.
//
// Writes. Every change goes through one writer thread, which runs them in order and commits
// them in groups: a group is one SQLite transaction holding what queued while the previous one
// committed, up to StoreOptions::max_batch_rows rows, so a thousand metric reports cost one
// commit under load and a lone write commits at once (a write waits for at most the group in
// progress and its own). Each
// write is checked on its own inside the group: one refused (a fenced report, an unknown job)
// changes nothing and fails alone; the others commit. The *Async methods take a WriteDone that
// the writer calls once, after the commit that made the write durable (OK) or with the reason
// it was refused; the synchronous methods are the same writes waited for. *Async calls never
// block: the queue in front of the writer is unbounded, so a caller bounds what it has in
// flight (a worker stream reading its next message only while fewer than N of its reports wait
// for their WriteDone).
//
// Reports of attempts carry (attempt_id, sequence), sequence counting the attempt's reports 1,
// 2, 3, ... as the worker sent them (JobEvent.sequence, AttemptEnded.sequence). The store keeps,
// per attempt, the highest sequence it committed; a report at or below it is a resend after a
// reconnect and is answered OK without changing anything (so a metric point is never stored
// twice). CommittedSequence reads it for Welcome.acks. Sequence 0 means "not numbered": such a
// report is never taken for a resend.
//
// Change feed. When opened with a ChangeFeed, the writer publishes to it once per commit: what
// changed in each sweep, as deltas (coordinator/feed/change_feed.h), and whether a job became
// PENDING. Version() is the version of the newest commit; versions are stored in the database
// and keep growing across restarts.
//
// Thread safety: a Store is safe for concurrent use from many threads without external
// locking. Reads use their own connection (WAL mode lets them run beside the writer).
//
// Invariants:
//  1. A job's current_attempt_id names its newest attempt, or 0 before the first one.
//  2. Reports (MarkRunning, AppendMetrics, EndAttempt) name an attempt; a report for an
//     attempt that is not the job's current one, or for a job that already ended, is refused
//     with FailedPrecondition and changes nothing (attempts fence workers).
//  3. Version() grows by at least one with every committed change, and never goes back, also
//     across restarts.
//  4. Per attempt, the committed sequence only grows; a report is applied at most once.
#ifndef ABLATE_COORDINATOR_STORE_STORE_H_
#define ABLATE_COORDINATOR_STORE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/metrics.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "ablate/v1/sweep_service.pb.h"
#include "ablate/v1/trainer.pb.h"
#include "ablate/v1/worker.pb.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace ablate::coordinator {

class ChangeFeed;

// The message of a job that an update of its sweep left out before it ran (Store::AddJobs).
inline constexpr char kDroppedBeforeItRan[] =
    "left out of its sweep by an update before it ran; an update that has its cell again "
    "queues it";

// Whether `job` is one: dropped, CANCELLED by that update.
inline bool DroppedBeforeItRan(const v1::Job& job) {
  return job.dropped() && job.state() == v1::JOB_STATE_CANCELLED &&
         job.message() == kDroppedBeforeItRan;
}

// The specs of those of `jobs` (a sweep's, read before an AddJobs) that are DroppedBeforeItRan
// and that `kept` names: the AddJobs that no longer drops them makes them PENDING, and its
// caller queues them.
inline std::vector<v1::JobSpec> TakenBack(const std::vector<v1::Job>& jobs,
                                          const absl::flat_hash_set<std::string>& kept) {
  std::vector<v1::JobSpec> out;
  for (const v1::Job& job : jobs) {
    if (DroppedBeforeItRan(job) && kept.contains(job.spec().job_id())) out.push_back(job.spec());
  }
  return out;
}

// The most bytes of lines a stored job log holds (Store::SaveJobLogAsync); a longer one keeps
// its newest lines. Four times a worker's default tail (64 KiB), so such a tail is kept whole.
inline constexpr size_t kMaxStoredLogBytes = size_t{256} << 10;
// The most ended attempts of one job whose logs the store keeps (Store::SaveJobLogAsync): the
// newest, by attempt id. With kMaxStoredLogBytes, at most 2 MiB of lines per job, while a
// job's attempts are bounded only by its max_attempts and every `ablate retry`.
inline constexpr int kStoredLogsPerJob = 8;

struct StoreOptions {
  // A group holds at most this many rows (a metric point counts one, another write one; a
  // single larger write, a 100,000-job sweep, is a group of its own). SQLite's append rate here
  // flattens out above a few thousand rows per transaction.
  int max_batch_rows = 5000;
  // The writer copies the write-ahead log back into the database once a commit leaves it this
  // many pages (4 KiB each), after answering that commit's writes. SQLite's default is 1,000;
  // metric appends rewrite the same index pages commit after commit, and checkpointing 40 MB
  // at a time writes each of them back once instead of once per 4 MB of log.
  int checkpoint_pages = 10'000;
  // ListWorkers leaves out workers disconnected for longer than this.
  absl::Duration worker_retention = absl::Hours(24);
  // Borrowed; when set, the writer publishes every commit to it. Must outlive the Store.
  ChangeFeed* feed = nullptr;
};

// Called once, on the store's writer thread, with no store lock held: OK after the commit that
// made the write durable, or the reason it was refused or failed. It must not block and must
// not wait for another write of this Store (it would wait for itself); it may start *Async
// writes and post work elsewhere.
using WriteDone = std::function<void(absl::Status)>;

// A report of one attempt, as a worker numbers it.
struct ReportKey {
  std::string job_id;
  uint64_t attempt_id = 0;
  uint64_t sequence = 0;  // JobEvent.sequence or AttemptEnded.sequence; 0: not numbered
};

// How an attempt ends, and what that does to its job.
struct AttemptEnd {
  // SUCCEEDED, FAILED, CANCELLED or LOST.
  v1::AttemptState attempt_state = v1::ATTEMPT_STATE_UNSPECIFIED;
  v1::ExitStatus exit;
  // SUCCEEDED, FAILED or CANCELLED end the job (with `message` and, when given,
  // final_eval_loss); PENDING queues it again (the caller decides whether retries remain).
  v1::JobState job_state = v1::JOB_STATE_UNSPECIFIED;
  std::string message;
  std::optional<double> final_eval_loss;
  // The attempt is added to the job's uncounted_attempts, so that it uses none of its
  // max_attempts (an attempt its worker interrupted: attempt_policy.h).
  bool uncounted = false;
  // The worker ended the attempt before starting its trainer (AttemptEnded.never_started):
  // stored as Attempt.never_started.
  bool never_started = false;
};

// A page of a sweep's jobs, in expansion order.
struct JobQuery {
  uint32_t start_index = 0;  // the first JobSpec.index to include
  int limit = 0;             // at most this many jobs; 0: all (unbounded: avoid on big sweeps)
  // Only jobs in one of these states; empty: all. Filtering walks the sweep's jobs from
  // start_index.
  std::vector<v1::JobState> states;
};

// One attempt to start: which PENDING job, on which worker.
struct AttemptStart {
  std::string job_id;
  std::string worker_id;
};

// What RequeueJobs did, per id asked, in the order asked.
struct RequeueResult {
  std::vector<v1::JobSpec> requeued;  // now PENDING
  // Ids left alone: "not a job of sweep S", "SUCCEEDED: its result stands", "RUNNING: it has
  // not ended" (PENDING, ASSIGNED and RUNNING alike).
  std::vector<v1::RefusedJob> refused;
};

// What the writer has done since the Store opened, for telemetry and benchmarks.
struct StoreStats {
  int64_t groups = 0;       // transactions committed
  int64_t writes = 0;       // writes in them (refused ones included)
  int64_t rows = 0;         // rows they weighed (a metric point is a row)
  int64_t checkpoints = 0;  // copies of the write-ahead log into the database
};

class Store {
 public:
  // Opens or creates the database at `path` (WAL mode, foreign keys on), migrates its schema to
  // the current version and starts the writer thread. FailedPrecondition when the file's schema
  // is newer than this binary knows. ":memory:" opens a private database that ends with the
  // Store (tests). `clock` must outlive the Store.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path, Clock& clock,
                                                     StoreOptions options = {});

  // Finishes the writes already queued (their WriteDone are called), then stops the writer.
  virtual ~Store() = default;

  // --- Sweeps and jobs -------------------------------------------------------------------

  // Inserts the sweep (its id, spec and created_at are used; an unset created_at means now)
  // and its jobs as PENDING, each with `max_attempts`, in one transaction. AlreadyExists when
  // a sweep with that id, or a job with one of those ids, is stored. Runs `meanwhile` on the
  // calling thread while the store's writer inserts the rows, before the commit: work the
  // caller would otherwise do after it (it may read `jobs`, never change them, and must not
  // wait for the store).
  virtual absl::Status CreateSweep(const v1::Sweep& sweep, const std::vector<v1::JobSpec>& jobs,
                                   uint32_t max_attempts, absl::FunctionRef<void()> meanwhile) = 0;
  absl::Status CreateSweep(const v1::Sweep& sweep, const std::vector<v1::JobSpec>& jobs,
                           uint32_t max_attempts) {
    return CreateSweep(sweep, jobs, max_attempts, [] {});
  }

  // An update of the stored sweep `sweep.id()`, in one transaction: stores `sweep.spec()` as
  // its spec, adds `jobs` (new cells; their indexes follow the sweep's) as PENDING, each with
  // `max_attempts`, and marks the sweep's jobs named in `dropped` as Job.dropped and its
  // other jobs as not. A dropped job still PENDING is not run: it becomes CANCELLED with the
  // message kDroppedBeforeItRan (one that started runs on, and keeps what it gives); a job
  // that an earlier update cancelled so and that is not in `dropped` is PENDING again, which
  // the caller queues. NotFound for an unknown sweep; AlreadyExists, changing nothing, when a
  // job id or index is already stored.
  virtual absl::Status AddJobs(const v1::Sweep& sweep, const std::vector<v1::JobSpec>& jobs,
                               const std::vector<std::string>& dropped, uint32_t max_attempts) = 0;

  // The ids of the sweeps whose spec is named `name`, oldest first; empty when none is.
  virtual absl::StatusOr<std::vector<std::string>> SweepIdsNamed(const std::string& name) = 0;

  // The sweep with its job counts and its state (rows.h: ReadSweepState). NotFound for an
  // unknown id.
  virtual absl::StatusOr<v1::Sweep> GetSweep(const std::string& sweep_id) = 0;
  // Every sweep, newest (last created) first, with counts and state.
  virtual absl::StatusOr<std::vector<v1::Sweep>> ListSweeps() = 0;
  // The sweep's jobs in expansion order. NotFound for an unknown sweep. Reads every job: on
  // a large sweep, page with the JobQuery overload, and count with GetSweep's counts (kept per
  // state as jobs change, so reading them reads a few rows, whatever the sweep's size).
  virtual absl::StatusOr<std::vector<v1::Job>> ListJobs(const std::string& sweep_id) = 0;
  // A page of the sweep's jobs (see JobQuery); the next page starts at the last job's index +
  // 1. Memory and time are bounded by `query.limit` when no state filter is set. NotFound for
  // an unknown sweep.
  virtual absl::StatusOr<std::vector<v1::Job>> ListJobs(const std::string& sweep_id,
                                                        const JobQuery& query) = 0;
  // The sweep (counts and state, as GetSweep) and a page of its jobs, read in one transaction,
  // with `version` the store's version that read saw and delta false: the starting point
  // for the change feed's deltas (Subscribe, Snapshot, then SkipThrough(version)). NotFound for
  // an unknown sweep.
  virtual absl::StatusOr<v1::SweepSnapshot> Snapshot(const std::string& sweep_id,
                                                     const JobQuery& jobs) = 0;
  virtual absl::StatusOr<v1::Job> GetJob(const std::string& job_id) = 0;
  // The ids of up to `limit` jobs whose id ends with "-" + `short_id` (the part after the
  // sweep's id that `plan`, `watch` and `retry` show), in no set order; empty when none does.
  // Reads every job's id: for the rare lookup by short id, not for hot paths.
  virtual absl::StatusOr<std::vector<std::string>> JobIdsEndingWith(const std::string& short_id,
                                                                    int limit) = 0;
  // The job's attempts, oldest first. NotFound for an unknown job.
  virtual absl::StatusOr<std::vector<v1::Attempt>> ListAttempts(const std::string& job_id) = 0;

  // Up to `limit` PENDING jobs, oldest (first created) sweep first, then in expansion order.
  // A job queued again after a lost attempt keeps its place.
  virtual absl::StatusOr<std::vector<v1::Job>> PendingJobs(int limit) = 0;

  // --- Attempts ---------------------------------------------------------------------------

  // Starts a new attempt of a PENDING job on `worker_id`: the job becomes ASSIGNED, its
  // attempt count grows by one and the new attempt becomes current. FailedPrecondition when
  // the job is not PENDING.
  virtual absl::StatusOr<v1::Attempt> StartAttempt(const std::string& job_id,
                                                   const std::string& worker_id) = 0;

  // StartAttempt for each of `starts`, in one transaction, in order. The result holds one
  // attempt per start; a start whose job is no longer PENDING (cancelled since it was queued)
  // or unknown changes nothing and gets an attempt with id 0. Any other error rolls back
  // every start.
  virtual absl::StatusOr<std::vector<v1::Attempt>> StartAttempts(
      const std::vector<AttemptStart>& starts) = 0;

  // Sets the message of those of `job_ids` that are PENDING (why they wait), in one
  // transaction; jobs in any other state, and unknown ids, are left alone.
  virtual absl::Status SetPendingMessages(const std::vector<std::string>& job_ids,
                                          const std::string& message) = 0;
  // Sets the message of each job whose current attempt is one of `attempts` (job id, attempt
  // id) while it is ASSIGNED or RUNNING (what befell that attempt's worker), in one
  // transaction; any other job, and unknown ids, are left alone.
  virtual absl::Status SetAttemptMessages(
      const std::vector<std::pair<std::string, uint64_t>>& attempts,
      const std::string& message) = 0;

  // The trainer of the current attempt started: job and attempt become RUNNING. A repeated
  // report for an attempt already RUNNING succeeds and changes nothing.
  virtual absl::Status MarkRunning(const std::string& job_id, uint64_t attempt_id) = 0;
  // The same, for the worker service: as a numbered report, and keeping the trainer's
  // `provenance` (TrainerStarted.provenance) as the job's Job.provenance when given.
  virtual void MarkRunningAsync(const ReportKey& report, std::optional<v1::Provenance> provenance,
                                WriteDone done) = 0;

  // Stores metric points of the current attempt (ASSIGNED or RUNNING) and updates the job's
  // step to the batch's highest and, when the batch holds train/loss, last_loss to its value
  // at the highest step.
  // Values that are NaN or infinite are stored and read back as such.
  virtual absl::Status AppendMetrics(const std::string& job_id, uint64_t attempt_id,
                                     const std::vector<v1::MetricPoint>& points) = 0;
  // The same, as a numbered report (a resend is answered OK and stores nothing).
  virtual void AppendMetricsAsync(const ReportKey& report, std::vector<v1::MetricPoint> points,
                                  WriteDone done) = 0;
  // The same, taking the points as the worker's report holds them: a caller that owns the
  // report moves its MetricBatch in (a swap), where the vector form costs a copy of each point.
  virtual void AppendMetricsAsync(const ReportKey& report, v1::MetricBatch batch,
                                  WriteDone done) = 0;

  // Ends the current attempt in `attempt_state` with `exit`, and moves the job to `job_state`:
  // SUCCEEDED, FAILED or CANCELLED end it (with `message` and, when given, final_eval_loss);
  // PENDING queues it again for another attempt (the caller decides whether retries remain).
  // InvalidArgument when `attempt_state` is not SUCCEEDED, FAILED, CANCELLED or LOST, or
  // `job_state` not PENDING, SUCCEEDED, FAILED or CANCELLED.
  virtual absl::Status EndAttempt(const std::string& job_id, uint64_t attempt_id,
                                  v1::AttemptState attempt_state, const v1::ExitStatus& exit,
                                  v1::JobState job_state, const std::string& message,
                                  std::optional<double> final_eval_loss) = 0;
  // The same, as a numbered report. InvalidArgument as above; a resend of an end already
  // committed is answered OK, even though the attempt is no longer live.
  virtual void EndAttemptAsync(const ReportKey& report, AttemptEnd end, WriteDone done) = 0;

  // The highest sequence committed of the attempt's reports; 0 when none was numbered.
  // NotFound for an unknown attempt.
  virtual absl::StatusOr<uint64_t> CommittedSequence(uint64_t attempt_id) = 0;

  // Cancels jobs that have not ended: PENDING ones at once; ASSIGNED and RUNNING ones end with
  // their current attempt marked CANCELLED. Returns the jobs as they were before the change
  // (state, current attempt, worker), so the caller can tell their workers to stop. Ids of
  // jobs that already ended are skipped; NotFound when an id is unknown, and then nothing is
  // cancelled.
  virtual absl::StatusOr<std::vector<v1::Job>> CancelJobs(const std::vector<std::string>& job_ids,
                                                          const std::string& message) = 0;

  // Queues ended jobs of sweep `sweep_id` again, in one transaction: each FAILED or CANCELLED
  // one becomes PENDING with its message cleared, max_attempts = `more_attempts` and
  // uncounted_attempts = attempts (a fresh retry budget, which none of its attempts so far is
  // charged against); its attempts so far stay as they were, and the next StartAttempt makes a
  // new one. Every other id is refused, with why (see RequeueResult), and changes nothing.
  // NotFound for an unknown sweep.
  virtual absl::StatusOr<RequeueResult> RequeueJobs(const std::string& sweep_id,
                                                    const std::vector<std::string>& job_ids,
                                                    uint32_t more_attempts) = 0;

  // --- Metrics ----------------------------------------------------------------------------

  // The job's series in name order, each sorted by step and thinned evenly to at most
  // `max_points` points (the first and last always kept; `max_points` <= 0 keeps every
  // point). A step reported twice (a retry resuming before where its predecessor stopped)
  // shows the newest value. Empty `names` reads every series; names without points are left
  // out. `logged`, when not null, receives the name of every series the job has a point of,
  // in name order, whatever `names` asks (the read meets every point of the job anyway).
  // NotFound for an unknown job.
  virtual absl::StatusOr<std::vector<v1::MetricSeries>> ReadMetrics(
      const std::string& job_id, const std::vector<std::string>& names, int max_points,
      std::vector<std::string>* logged) = 0;
  absl::StatusOr<std::vector<v1::MetricSeries>> ReadMetrics(const std::string& job_id,
                                                            const std::vector<std::string>& names,
                                                            int max_points) {
    return ReadMetrics(job_id, names, max_points, nullptr);
  }

  // --- Job logs ---------------------------------------------------------------------------

  // Stores `log`, the tail of the job's attempt log.attempt_id() as LogTails keeps it, as that
  // attempt's log, replacing one stored of the same attempt. A job keeps the logs of its
  // kStoredLogsPerJob newest attempts that stored one: a save past that drops the oldest (a
  // late save of an attempt older than all of them changes nothing, OK). Each log holds at most
  // kMaxStoredLogBytes of lines: past that its oldest lines are dropped and `truncated` set.
  // NotFound, changing nothing, when log.attempt_id() is not an attempt of log.job_id().
  virtual void SaveJobLogAsync(v1::JobLog log, WriteDone done) = 0;
  // The stored log of attempt `attempt_id` of the job, or with 0 of its newest attempt that
  // stored one; attempt_id 0 and no lines when there is none (as for an unknown job).
  virtual absl::StatusOr<v1::JobLog> ReadJobLog(const std::string& job_id, uint64_t attempt_id) = 0;

  // --- Workers ----------------------------------------------------------------------------

  // Records a worker as connected (with its slots) or disconnected, stamping last_seen. A
  // disconnect keeps the info last reported; connected_at restarts on a reconnect.
  virtual absl::Status UpsertWorker(const v1::WorkerInfo& info, bool connected) = 0;
  virtual void UpsertWorkerAsync(const v1::WorkerInfo& info, bool connected, WriteDone done) = 0;
  // A heartbeat: stamps the worker's last_seen. NotFound for a worker never upserted.
  virtual void TouchWorkerAsync(const std::string& worker_id, WriteDone done) = 0;
  // Every worker by id, with the jobs it holds (ASSIGNED or RUNNING) and its free slots: its
  // slots less those of each job held (common/slot_need.h). Workers disconnected for longer
  // than StoreOptions::worker_retention are left out.
  virtual absl::StatusOr<std::vector<v1::Worker>> ListWorkers() = 0;

  // --- Change notification ----------------------------------------------------------------

  // A counter that grows with every commit; it starts where the database's last commit left
  // it (0 for a new file).
  virtual int64_t Version() = 0;
  // Blocks until Version() > `seen` or `timeout` passes; returns the current version.
  virtual int64_t WaitForChange(int64_t seen, absl::Duration timeout) = 0;

  virtual StoreStats Stats() = 0;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_STORE_STORE_H_
