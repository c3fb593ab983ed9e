// Job messages: why pending jobs wait, and what befell a running job's worker. Part of
// SqliteStore (sqlite_store.h).
#include <string>
#include <utility>
#include <vector>

#include "coordinator/store/rows.h"
#include "coordinator/store/sqlite_store.h"

namespace ablate::coordinator {

using internal::Db;
using internal::JobRow;
using internal::LoadJob;
using internal::Statement;

namespace {

// Sets `message` on the jobs of `jobs` (job id, and an attempt id for `keep`) whose row `keep`
// accepts; unknown ids are skipped.
template <typename Keep>
absl::Status SetMessages(Db& db, internal::Changes& changes,
                         const std::vector<std::pair<std::string, uint64_t>>& jobs,
                         const std::string& message, const Keep& keep) {
  absl::StatusOr<Statement> update = db.Prepare("UPDATE jobs SET message = ?2 WHERE rowid = ?1");
  if (!update.ok()) return update.status();
  for (const auto& [job_id, attempt_id] : jobs) {
    absl::StatusOr<JobRow> job = LoadJob(db, job_id);
    if (absl::IsNotFound(job.status())) continue;
    if (!job.ok()) return job.status();
    if (!keep(*job, attempt_id)) continue;
    absl::Status updated = update->Bind(1, job->rowid).Bind(2, message).Run();
    if (!updated.ok()) return updated;
    update->Reset();
    changes.Job(job->rowid, job->sweep_id);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SqliteStore::SetPendingMessages(const std::vector<std::string>& job_ids,
                                             const std::string& message) {
  std::vector<std::pair<std::string, uint64_t>> jobs;
  jobs.reserve(job_ids.size());
  for (const std::string& job_id : job_ids) jobs.emplace_back(job_id, 0);
  return Write(
      [&](Db& db, internal::Changes& changes) {
        return SetMessages(db, changes, jobs, message, [](const JobRow& job, uint64_t) {
          return job.state == v1::JOB_STATE_PENDING;
        });
      },
      static_cast<int64_t>(jobs.size()));
}

absl::Status SqliteStore::SetAttemptMessages(
    const std::vector<std::pair<std::string, uint64_t>>& attempts, const std::string& message) {
  return Write(
      [&](Db& db, internal::Changes& changes) {
        return SetMessages(
            db, changes, attempts, message, [](const JobRow& job, uint64_t attempt_id) {
              return job.current_attempt_id == attempt_id &&
                     (job.state == v1::JOB_STATE_ASSIGNED || job.state == v1::JOB_STATE_RUNNING);
            });
      },
      static_cast<int64_t>(attempts.size()));
}

}  // namespace ablate::coordinator
