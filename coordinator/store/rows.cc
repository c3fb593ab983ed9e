#include "coordinator/store/rows.h"

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "sweep/tuning.h"

namespace ablate::coordinator::internal {
namespace {

template <typename Message>
absl::StatusOr<Message> Parse(absl::string_view bytes, absl::string_view what) {
  Message message;
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("stored ", what, " does not parse"));
  }
  return message;
}

// The part of `job`'s checkpoint_dir before <sweep_id>/<job_id> ("<root>/"), or nullopt when
// the directory does not end in them.
std::optional<absl::string_view> CutCheckpointDir(const v1::JobSpec& job) {
  const absl::string_view dir = job.checkpoint_dir();
  const size_t tail = job.sweep_id().size() + 1 + job.job_id().size();
  if (dir.size() < tail) return std::nullopt;
  const absl::string_view root = dir.substr(0, dir.size() - tail);
  const absl::string_view rest = dir.substr(root.size());
  if (!root.empty() && root.back() != '/') return std::nullopt;
  if (!absl::StartsWith(rest, job.sweep_id()) || rest[job.sweep_id().size()] != '/' ||
      !absl::EndsWith(rest, job.job_id())) {
    return std::nullopt;
  }
  return root;
}

}  // namespace

void SerializeStoredSpec(const v1::JobSpec& job, std::string& out) {
  // One message per thread, so that a submit's 100,000 copies reuse its allocations.
  thread_local v1::JobSpec stored;
  stored = job;
  stored.clear_sweep_id();
  stored.clear_index();
  if (const std::optional<absl::string_view> root = CutCheckpointDir(job); root.has_value()) {
    stored.clear_job_id();
    stored.set_checkpoint_dir(std::string(*root));
  }
  stored.AppendToString(&out);
}

absl::StatusOr<v1::JobSpec> JobSpecFromRow(absl::string_view bytes, absl::string_view job_id,
                                           absl::string_view sweep_id, int64_t index) {
  absl::StatusOr<v1::JobSpec> spec = Parse<v1::JobSpec>(bytes, "job spec");
  if (!spec.ok()) return spec.status();
  if (spec->job_id().empty()) {
    spec->set_job_id(std::string(job_id));
    spec->set_checkpoint_dir(absl::StrCat(spec->checkpoint_dir(), sweep_id, "/", job_id));
  }
  spec->set_sweep_id(std::string(sweep_id));
  spec->set_index(static_cast<uint32_t>(index));
  return spec;
}

absl::StatusOr<v1::Job> JobFromRow(const Statement& row, int first_column) {
  absl::StatusOr<v1::JobSpec> spec =
      JobSpecFromRow(row.Blob(first_column + 3), row.Text(first_column), row.Text(first_column + 1),
                     row.Int(first_column + 2));
  if (!spec.ok()) return spec.status();
  const int c = first_column + 3;
  v1::Job job;
  *job.mutable_spec() = *std::move(spec);
  job.set_state(static_cast<v1::JobState>(row.Int(c + 1)));
  job.set_attempts(static_cast<uint32_t>(row.Int(c + 2)));
  job.set_max_attempts(static_cast<uint32_t>(row.Int(c + 3)));
  job.set_current_attempt_id(static_cast<uint64_t>(row.Int(c + 4)));
  job.set_worker_id(row.Text(c + 5));
  job.set_step(row.Int(c + 6));
  if (auto loss = row.OptionalDouble(c + 7)) job.set_last_loss(*loss);
  if (auto loss = row.OptionalDouble(c + 8)) job.set_final_eval_loss(*loss);
  job.set_message(row.Text(c + 9));
  *job.mutable_created_at() = TimestampOf(row.Int(c + 10));
  *job.mutable_updated_at() = TimestampOf(row.Int(c + 11));
  if (!row.Blob(c + 12).empty()) {
    absl::StatusOr<v1::Provenance> provenance =
        Parse<v1::Provenance>(row.Blob(c + 12), "provenance");
    if (!provenance.ok()) return provenance.status();
    *job.mutable_provenance() = *std::move(provenance);
  }
  job.set_dropped(row.Int(c + 13) != 0);
  if (auto loss = row.OptionalDouble(c + 14)) job.set_last_eval_loss(*loss);
  job.set_uncounted_attempts(static_cast<uint32_t>(row.Int(c + 15)));
  return job;
}

void SpecRows::Serialize() {
  // Batches keep the hand-over's locking rare; the writer waits at most for one.
  constexpr size_t kBatch = 256;
  for (size_t begin = 0; begin < jobs_.size(); begin += kBatch) {
    const size_t end = std::min(jobs_.size(), begin + kBatch);
    for (size_t i = begin; i < end; ++i) SerializeStoredSpec(jobs_[i], bytes_[i]);
    absl::MutexLock lock(&mu_);
    ready_.store(end, std::memory_order_release);
  }
}

absl::string_view SpecRows::Get(size_t i) {
  if (ready_.load(std::memory_order_acquire) <= i) {
    absl::MutexLock lock(&mu_);
    auto made = [this, i] { return ready_.load(std::memory_order_acquire) > i; };
    mu_.Await(absl::Condition(&made));
  }
  return bytes_[i];
}

absl::Status InsertPendingJobs(Db& db, const std::string& sweep_id,
                               const std::vector<v1::JobSpec>& jobs, SpecRows& specs,
                               uint32_t max_attempts, int64_t now, std::vector<int64_t>* rowids) {
  absl::StatusOr<Statement> insert = db.Prepare(
      "INSERT INTO jobs (id, sweep_id, idx, spec, state, max_attempts, created_at, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)");
  if (!insert.ok()) return insert.status();
  for (size_t i = 0; i < jobs.size(); ++i) {
    const v1::JobSpec& job = jobs[i];
    absl::Status status = insert->Bind(1, job.job_id())
                              .Bind(2, sweep_id)
                              .Bind(3, int64_t{job.index()})
                              .BindBlobUncopied(4, specs.Get(i))
                              .Bind(5, int64_t{v1::JOB_STATE_PENDING})
                              .Bind(6, int64_t{max_attempts})
                              .Bind(7, now)
                              .Run();
    if (absl::IsAlreadyExists(status)) {
      return absl::AlreadyExistsError(
          absl::StrCat("job ", job.job_id(), " (index ", job.index(), ") already exists"));
    }
    if (!status.ok()) return status;
    if (rowids != nullptr) rowids->push_back(db.LastInsertRowid());
    insert->Reset();
  }
  absl::StatusOr<Statement> count = db.Prepare(
      "INSERT INTO sweep_counts (sweep_id, state, n) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (sweep_id, state) DO UPDATE SET n = n + excluded.n");
  if (!count.ok()) return count.status();
  return count->Bind(1, sweep_id)
      .Bind(2, int64_t{v1::JOB_STATE_PENDING})
      .Bind(3, static_cast<int64_t>(jobs.size()))
      .Run();
}

absl::StatusOr<v1::Attempt> AttemptFromRow(const Statement& row) {
  v1::Attempt attempt;
  attempt.set_id(static_cast<uint64_t>(row.Int(0)));
  attempt.set_job_id(row.Text(1));
  attempt.set_worker_id(row.Text(2));
  attempt.set_state(static_cast<v1::AttemptState>(row.Int(3)));
  if (!row.Blob(4).empty()) {
    absl::StatusOr<v1::ExitStatus> exit = Parse<v1::ExitStatus>(row.Blob(4), "exit status");
    if (!exit.ok()) return exit.status();
    *attempt.mutable_exit() = *std::move(exit);
  }
  *attempt.mutable_started_at() = TimestampOf(row.Int(5));
  if (!row.IsNull(6)) *attempt.mutable_ended_at() = TimestampOf(row.Int(6));
  attempt.set_never_started(row.Int(7) != 0);
  return attempt;
}

absl::StatusOr<v1::JobCounts> ReadCounts(Db& db, const std::string& sweep_id) {
  absl::StatusOr<Statement> counts =
      db.Prepare("SELECT state, n FROM sweep_counts WHERE sweep_id = ?1");
  if (!counts.ok()) return counts.status();
  counts->Bind(1, sweep_id);
  v1::JobCounts out;
  absl::Status read = counts->ForEachRow([&](const Statement& row) {
    const int64_t state = row.Int(0);
    const auto n = static_cast<uint32_t>(row.Int(1));
    if (state >= 0) {
      CountJobs(static_cast<v1::JobState>(state), n, out);
      return absl::OkStatus();
    }
    // A dropped job's row is keyed by its negated state (schema.cc, version 7).
    out.set_dropped(out.dropped() + n);
    if (-state == v1::JOB_STATE_PENDING || -state == v1::JOB_STATE_ASSIGNED ||
        -state == v1::JOB_STATE_RUNNING) {
      out.set_dropped_live(out.dropped_live() + n);
    }
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  return out;
}

absl::StatusOr<v1::Sweep> ReadSweepHeader(Db& db, const std::string& sweep_id) {
  absl::StatusOr<Statement> query = db.Prepare("SELECT created_at, spec FROM sweeps WHERE id = ?1");
  if (!query.ok()) return query.status();
  absl::StatusOr<bool> found = query->Bind(1, sweep_id).Step();
  if (!found.ok()) return found.status();
  if (!*found) return absl::NotFoundError(absl::StrCat("unknown sweep ", sweep_id));
  v1::Sweep sweep;
  sweep.set_id(sweep_id);
  *sweep.mutable_created_at() = TimestampOf(query->Int(0));
  if (absl::Status read = ReadProgress(db, query->Blob(1), sweep); !read.ok()) return read;
  return sweep;
}

absl::Status ReadProgress(Db& db, absl::string_view spec_bytes, v1::Sweep& sweep) {
  absl::StatusOr<v1::JobCounts> counts = ReadCounts(db, sweep.id());
  if (!counts.ok()) return counts.status();
  *sweep.mutable_counts() = *std::move(counts);
  absl::StatusOr<v1::SweepState> state = ReadSweepState(db, sweep.id(), spec_bytes, sweep.counts());
  if (!state.ok()) return state.status();
  sweep.set_state(*state);
  if (*state == v1::SWEEP_STATE_ACTIVE) return absl::OkStatus();
  absl::StatusOr<Statement> last =
      db.Prepare("SELECT MAX(updated_at) FROM jobs WHERE sweep_id = ?1");
  if (!last.ok()) return last.status();
  absl::StatusOr<bool> found = last->Bind(1, sweep.id()).Step();
  if (!found.ok()) return found.status();
  if (*found && !last->IsNull(0)) *sweep.mutable_ended_at() = TimestampOf(last->Int(0));
  return absl::OkStatus();
}

absl::StatusOr<v1::SweepState> ReadSweepState(Db& db, const std::string& sweep_id,
                                              absl::string_view spec_bytes,
                                              const v1::JobCounts& counts) {
  const v1::SweepState by_counts = SweepStateOf(counts);
  // The spec is parsed, and a tuned sweep's jobs read, only once no job is live: at a rung's
  // barrier and after the sweep ended.
  if (by_counts == v1::SWEEP_STATE_ACTIVE) return by_counts;
  absl::StatusOr<v1::SweepSpec> spec = Parse<v1::SweepSpec>(spec_bytes, "sweep spec");
  if (!spec.ok()) return spec.status();
  // The counts leave out the jobs an update dropped, which count for nothing once they ended.
  if (!spec->has_tuning()) return by_counts;
  absl::StatusOr<Statement> query = db.Prepare(
      absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE sweep_id = ?1 ORDER BY idx"));
  if (!query.ok()) return query.status();
  query->Bind(1, sweep_id);
  std::vector<v1::Job> jobs;
  absl::Status read = query->ForEachRow([&](const Statement& row) {
    absl::StatusOr<v1::Job> job = JobFromRow(row);
    if (!job.ok()) return job.status();
    jobs.push_back(*std::move(job));
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  v1::JobCounts outcomes;
  for (v1::JobState state : sweep::TuningOutcomes(*spec, jobs)) CountJobs(state, 1, outcomes);
  return SweepStateOf(outcomes);
}

void CountJobs(v1::JobState state, uint32_t n, v1::JobCounts& counts) {
  counts.set_total(counts.total() + n);
  switch (state) {
    case v1::JOB_STATE_PENDING:
      counts.set_pending(counts.pending() + n);
      break;
    case v1::JOB_STATE_ASSIGNED:
      counts.set_assigned(counts.assigned() + n);
      break;
    case v1::JOB_STATE_RUNNING:
      counts.set_running(counts.running() + n);
      break;
    case v1::JOB_STATE_SUCCEEDED:
      counts.set_succeeded(counts.succeeded() + n);
      break;
    case v1::JOB_STATE_FAILED:
      counts.set_failed(counts.failed() + n);
      break;
    case v1::JOB_STATE_CANCELLED:
      counts.set_cancelled(counts.cancelled() + n);
      break;
    default:
      break;
  }
}

v1::SweepState SweepStateOf(const v1::JobCounts& counts) {
  if (counts.pending() + counts.assigned() + counts.running() + counts.dropped_live() > 0) {
    return v1::SWEEP_STATE_ACTIVE;
  }
  if (counts.failed() > 0) return v1::SWEEP_STATE_FAILED;
  if (counts.cancelled() > 0) return v1::SWEEP_STATE_CANCELLED;
  return v1::SWEEP_STATE_COMPLETED;
}

google::protobuf::Timestamp TimestampOf(int64_t unix_micros) {
  return ToProto(absl::FromUnixMicros(unix_micros));
}

absl::StatusOr<JobRow> LoadJob(Db& db, const std::string& job_id) {
  absl::StatusOr<Statement> query =
      db.Prepare("SELECT rowid, state, current_attempt_id, sweep_id FROM jobs WHERE id = ?1");
  if (!query.ok()) return query.status();
  absl::StatusOr<bool> found = query->Bind(1, job_id).Step();
  if (!found.ok()) return found.status();
  if (!*found) return absl::NotFoundError(absl::StrCat("unknown job ", job_id));
  return JobRow{query->Int(0), static_cast<v1::JobState>(query->Int(1)),
                static_cast<uint64_t>(query->Int(2)), query->Text(3)};
}

}  // namespace ablate::coordinator::internal
