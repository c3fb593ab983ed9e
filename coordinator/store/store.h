// Store owns the coordinator's SQLite database: sweeps, jobs, attempts, metric points and
// workers. It is the coordinator's only durable state; every method that changes something is
// one transaction, so a crash loses nothing a caller was told had succeeded.
//
// Thread safety: a Store is safe for concurrent use from many threads without external
// locking. Writes go through one writer connection; reads use their own connection (WAL mode
// lets them run beside a write).
//
// Invariants:
//  1. A job's current_attempt_id names its newest attempt, or 0 before the first one.
//  2. Reports (MarkRunning, AppendMetrics, EndAttempt) name an attempt; a report for an
//     attempt that is not the job's current one, or for a job that already ended, is refused
//     with FailedPrecondition and changes nothing (attempts fence workers).
//  3. Version() grows by at least one with every committed change.
#ifndef ABLATE_COORDINATOR_STORE_STORE_H_
#define ABLATE_COORDINATOR_STORE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ablate/v1/job.pb.h"
#include "ablate/v1/metrics.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "ablate/v1/worker.pb.h"
#include "common/clock.h"

namespace ablate::coordinator {

// One attempt to start: which PENDING job, on which worker.
struct AttemptStart {
  std::string job_id;
  std::string worker_id;
};

class Store {
 public:
  // Opens or creates the database at `path` (WAL mode, foreign keys on) and migrates its
  // schema to the current version. FailedPrecondition when the file's schema is newer than
  // this binary knows. ":memory:" opens a private database that ends with the Store (tests).
  // `clock` must outlive the Store.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path, Clock& clock);

  virtual ~Store() = default;

  // --- Sweeps and jobs -------------------------------------------------------------------

  // Inserts the sweep (its id, spec and created_at are used; an unset created_at means now)
  // and its jobs as PENDING, each with `max_attempts`, in one transaction. AlreadyExists when
  // a sweep with that id, or a job with one of those ids, is stored.
  virtual absl::Status CreateSweep(const v1::Sweep& sweep, const std::vector<v1::JobSpec>& jobs,
                                   uint32_t max_attempts) = 0;

  // The sweep with its job counts and the state derived from them. NotFound for an unknown id.
  virtual absl::StatusOr<v1::Sweep> GetSweep(const std::string& sweep_id) = 0;
  // Every sweep, newest (last created) first, with counts and state.
  virtual absl::StatusOr<std::vector<v1::Sweep>> ListSweeps() = 0;
  // The sweep's jobs in expansion order. NotFound for an unknown sweep.
  virtual absl::StatusOr<std::vector<v1::Job>> ListJobs(const std::string& sweep_id) = 0;
  virtual absl::StatusOr<v1::Job> GetJob(const std::string& job_id) = 0;
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

  // The trainer of the current attempt started: job and attempt become RUNNING. A repeated
  // report for an attempt already RUNNING succeeds and changes nothing.
  virtual absl::Status MarkRunning(const std::string& job_id, uint64_t attempt_id) = 0;

  // Stores metric points of the current attempt (ASSIGNED or RUNNING) and updates the job's
  // step to the batch's highest and, when the batch holds train/loss, last_loss to its value
  // at the highest step.
  virtual absl::Status AppendMetrics(const std::string& job_id, uint64_t attempt_id,
                                     const std::vector<v1::MetricPoint>& points) = 0;

  // Ends the current attempt in `attempt_state` with `exit`, and moves the job to `job_state`:
  // SUCCEEDED, FAILED or CANCELLED end it (with `message` and, when given, final_eval_loss);
  // PENDING queues it again for another attempt (the caller decides whether retries remain).
  // InvalidArgument when `attempt_state` is not SUCCEEDED, FAILED, CANCELLED or LOST, or
  // `job_state` not PENDING, SUCCEEDED, FAILED or CANCELLED.
  virtual absl::Status EndAttempt(const std::string& job_id, uint64_t attempt_id,
                                  v1::AttemptState attempt_state, const v1::ExitStatus& exit,
                                  v1::JobState job_state, const std::string& message,
                                  std::optional<double> final_eval_loss) = 0;

  // Cancels jobs that have not ended: PENDING ones at once; ASSIGNED and RUNNING ones end with
  // their current attempt marked CANCELLED. Returns the jobs as they were before the change
  // (state, current attempt, worker), so the caller can tell their workers to stop. Ids of
  // jobs that already ended are skipped; NotFound when an id is unknown, and then nothing is
  // cancelled.
  virtual absl::StatusOr<std::vector<v1::Job>> CancelJobs(
      const std::vector<std::string>& job_ids, const std::string& message) = 0;

  // --- Metrics ----------------------------------------------------------------------------

  // The job's series in name order, each sorted by step and thinned evenly to at most
  // `max_points` points (the first and last always kept; `max_points` <= 0 keeps every
  // point). A step reported twice (a retry resuming before where its predecessor stopped)
  // shows the newest value. Empty `names` reads every series; names without points are left
  // out. NotFound for an unknown job.
  virtual absl::StatusOr<std::vector<v1::MetricSeries>> ReadMetrics(
      const std::string& job_id, const std::vector<std::string>& names, int max_points) = 0;

  // --- Workers ----------------------------------------------------------------------------

  // Records a worker as connected (with its slots) or disconnected, stamping last_seen. A
  // disconnect keeps the info last reported; connected_at restarts on a reconnect.
  virtual absl::Status UpsertWorker(const v1::WorkerInfo& info, bool connected) = 0;
  // Every worker by id, with the jobs it holds (ASSIGNED or RUNNING) and its free slots: its
  // slots less those of each job held (common/slot_need.h).
  virtual absl::StatusOr<std::vector<v1::Worker>> ListWorkers() = 0;

  // --- Change notification ----------------------------------------------------------------

  // A counter that grows with every committed change; it starts at 0 when the Store opens.
  virtual int64_t Version() = 0;
  // Blocks until Version() > `seen` or `timeout` passes; returns the current version.
  virtual int64_t WaitForChange(int64_t seen, absl::Duration timeout) = 0;
};

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_STORE_STORE_H_
