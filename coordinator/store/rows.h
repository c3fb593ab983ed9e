// How stored rows map onto the proto messages: the column lists the store selects, the
// functions that read them back, and the insert of new jobs. Stateless.
#ifndef ABLATE_COORDINATOR_STORE_ROWS_H_
#define ABLATE_COORDINATOR_STORE_ROWS_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/sweep.pb.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store/sqlite_db.h"
#include "google/protobuf/timestamp.pb.h"

namespace ablate::coordinator::internal {

// Columns JobFromRow reads, in its order, starting at `first_column`.
inline constexpr char kJobColumns[] =
    "id, sweep_id, idx, spec, state, attempts, max_attempts, current_attempt_id, worker_id, step, "
    "last_loss, "
    "final_eval_loss, message, created_at, updated_at, provenance, dropped, last_eval_loss, "
    "uncounted_attempts";
absl::StatusOr<v1::Job> JobFromRow(const Statement& row, int first_column = 0);

// Columns AttemptFromRow reads, in its order.
inline constexpr char kAttemptColumns[] =
    "id, job_id, worker_id, state, exit, started_at, ended_at, never_started";
absl::StatusOr<v1::Attempt> AttemptFromRow(const Statement& row);

// The sweep's job counts, from the per-state counts the store keeps (a few rows), the jobs an
// update dropped apart (JobCounts.dropped).
absl::StatusOr<v1::JobCounts> ReadCounts(Db& db, const std::string& sweep_id);
// The sweep's id, created_at, counts, state and ended_at, without its spec. NotFound for an
// unknown id.
absl::StatusOr<v1::Sweep> ReadSweepHeader(Db& db, const std::string& sweep_id);
// Fills the counts, state (ReadSweepState, from its stored `spec_bytes`) and, once it ended,
// ended_at of the sweep that `sweep.id()` names.
absl::Status ReadProgress(Db& db, absl::string_view spec_bytes, v1::Sweep& sweep);

// A job row's spec column holds the JobSpec without what the row's own columns hold: no
// job_id, sweep_id or index, and a checkpoint_dir of <root>/<sweep_id>/<job_id> cut to
// "<root>/" (an expansion's jobs all have one), which makes a 100,000-job sweep's rows a third
// smaller to insert and to log. The job_id stays in the bytes when the checkpoint_dir was not
// cut, which is how JobSpecFromRow tells the two apart; rows stored whole before this read back
// unchanged. A job's id is never empty.
//
// Appends the stored form of `job` to `out`.
void SerializeStoredSpec(const v1::JobSpec& job, std::string& out);
// The JobSpec of a row whose columns id, sweep_id and idx are `job_id`, `sweep_id` and `index`
// and whose spec column is `bytes`: every reader of the column goes through this. DataLoss when
// the bytes do not parse.
absl::StatusOr<v1::JobSpec> JobSpecFromRow(absl::string_view bytes, absl::string_view job_id,
                                           absl::string_view sweep_id, int64_t index);

// The serialized specs of a write's jobs, made on the thread that asked for the write while
// the store's writer inserts the rows before them (SqliteStore::CreateSweep): that thread
// would otherwise only wait, and serializing 100,000 specs was a tenth of the writer's time.
// Thread safety: Serialize runs on one thread, Get on one other; `jobs` must outlive both.
class SpecRows {
 public:
  explicit SpecRows(const std::vector<v1::JobSpec>& jobs) : jobs_(jobs), bytes_(jobs.size()) {}

  // Serializes the jobs in order; each batch becomes readable once it is done.
  void Serialize() ABSL_LOCKS_EXCLUDED(mu_);
  // Job i's serialized spec, valid while this lives; waits until Serialize has made it.
  absl::string_view Get(size_t i) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::vector<v1::JobSpec>& jobs_;
  std::vector<std::string> bytes_;  // [i] written before ready_ passes i, read after
  std::atomic<size_t> ready_{0};    // specs serialized; grows under mu_, so Await sees it
  absl::Mutex mu_;
};

// Inserts `jobs` of sweep `sweep_id` as PENDING rows (`specs` holds their bytes), each with
// `max_attempts` and created at `now` (Unix microseconds), in the order given, so that their
// rowids order the queue (PendingJobs), and adds them to the sweep's PENDING count. Appends
// each new row's rowid to `rowids` when it is not null. AlreadyExists naming the first job
// whose id or index is already stored; the rows inserted before it stay, for the caller's
// savepoint to undo.
absl::Status InsertPendingJobs(Db& db, const std::string& sweep_id,
                               const std::vector<v1::JobSpec>& jobs, SpecRows& specs,
                               uint32_t max_attempts, int64_t now, std::vector<int64_t>* rowids);

// The sweep's state: from `counts` alone (SweepStateOf) while a job is live or the sweep has no
// tuning (so the jobs an update dropped, counted apart, decide nothing once they ended, not even
// those it cancelled before they ran); a tuned sweep whose every job ended reads its jobs and
// decides from sweep::TuningOutcomes, so it stays ACTIVE at a rung's barrier and its trials'
// failures do not fail it. `spec_bytes` is the stored (serialized) spec. DataLoss when it does not
// parse.
absl::StatusOr<v1::SweepState> ReadSweepState(Db& db, const std::string& sweep_id,
                                              absl::string_view spec_bytes,
                                              const v1::JobCounts& counts);

// Adds `n` jobs in `state` to `counts`.
void CountJobs(v1::JobState state, uint32_t n, v1::JobCounts& counts);
// The state of a sweep whose jobs' states are `counts`, as sweep.proto defines it.
v1::SweepState SweepStateOf(const v1::JobCounts& counts);

google::protobuf::Timestamp TimestampOf(int64_t unix_micros);

// A job as a report about one of its attempts needs it, or a change of its message.
struct JobRow {
  int64_t rowid = 0;
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  uint64_t current_attempt_id = 0;
  std::string sweep_id;
};

// The row of job `job_id`; NotFound naming it when there is none.
absl::StatusOr<JobRow> LoadJob(Db& db, const std::string& job_id);

}  // namespace ablate::coordinator::internal

#endif  // ABLATE_COORDINATOR_STORE_ROWS_H_
