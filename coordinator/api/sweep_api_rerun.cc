// Running cells again: an update of a sweep by an edited spec, and retries of its ended jobs.
// Part of SweepApi (sweep_api.h).
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/api/sweep_api.h"
#include "sweep/grid.h"
#include "sweep/update.h"

namespace ablate::coordinator {

absl::StatusOr<v1::SubmitSweepResponse> SweepApi::UpdateSweep(const v1::SweepSpec& spec,
                                                              const std::string& sweep_id) {
  absl::StatusOr<v1::Sweep> stored = store_.GetSweep(sweep_id);
  if (!stored.ok()) return stored.status();
  absl::StatusOr<sweep::Expansion> expansion = sweep::ExpandSweep(spec);
  if (!expansion.ok()) return expansion.status();
  v1::SubmitSweepResponse response;
  for (const v1::ExcludedCell& dropped : expansion->dropped) {
    response.add_dropped_cells(sweep::ExcludedLine(dropped));
  }
  absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(stored->id());
  if (!jobs.ok()) return jobs.status();
  std::vector<v1::JobSpec> specs;
  specs.reserve(jobs->size());
  for (const v1::Job& job : *jobs) specs.push_back(job.spec());
  sweep::Update update = sweep::UpdateOf(stored->id(), specs, spec, *std::move(expansion));
  SetTrainFlops(update.added);
  WarnOfRoots(update.added, &response);

  v1::Sweep updated;
  updated.set_id(stored->id());
  *updated.mutable_spec() = spec;
  absl::Status added = store_.AddJobs(updated, update.added, update.dropped, MaxAttemptsOf(spec));
  if (!added.ok()) return added;
  scheduler_.JobsQueued(update.added);
  const absl::flat_hash_set<std::string> reused(update.reused.begin(), update.reused.end());
  scheduler_.JobsQueued(TakenBack(*jobs, reused));
  WatchTuning(stored->id(), spec);
  // The reused jobs by state: a reused job keeps its state, but one that an earlier update
  // cancelled before it ran is queued again (TakenBack).
  uint32_t reused_unfinished = 0, reused_failed = 0, reused_cancelled = 0;
  for (const v1::Job& job : *jobs) {
    if (job.state() == v1::JOB_STATE_SUCCEEDED || !reused.contains(job.spec().job_id())) continue;
    ++reused_unfinished;
    if (DroppedBeforeItRan(job)) continue;
    reused_failed += job.state() == v1::JOB_STATE_FAILED ? 1 : 0;
    reused_cancelled += job.state() == v1::JOB_STATE_CANCELLED ? 1 : 0;
  }
  ABLATE_LOG(INFO) << "sweep updated sweep_id=" << stored->id()
                   << " reused=" << update.reused.size() << " added=" << update.added.size()
                   << " dropped=" << update.dropped.size();
  absl::StatusOr<v1::Sweep> after = store_.GetSweep(stored->id());
  if (!after.ok()) return after.status();
  *response.mutable_sweep() = *std::move(after);
  response.set_updated(true);
  response.set_reused_jobs(static_cast<uint32_t>(update.reused.size()));
  response.set_reused_unfinished(reused_unfinished);
  response.set_reused_failed(reused_failed);
  response.set_reused_cancelled(reused_cancelled);
  response.set_added_jobs(static_cast<uint32_t>(update.added.size()));
  response.set_dropped_jobs(static_cast<uint32_t>(update.dropped.size()));
  return response;
}

absl::StatusOr<v1::RetryJobsResponse> SweepApi::RetryJobs(const v1::RetryJobsRequest& request) {
  telemetry_.CountRpc("RetryJobs");
  if (absl::Status s = Require(request.sweep(), "sweep"); !s.ok()) return s;
  if (request.job_ids().empty() == request.states().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("give job_ids or states (JOB_STATE_FAILED, JOB_STATE_CANCELLED)",
                     request.job_ids().empty() ? "" : ", not both"));
  }
  for (int state : request.states()) {
    if (state != v1::JOB_STATE_FAILED && state != v1::JOB_STATE_CANCELLED) {
      return absl::InvalidArgumentError(absl::StrCat(
          "states: ", v1::JobState_IsValid(state) ? v1::JobState_Name(state) : absl::StrCat(state),
          " cannot be retried; only JOB_STATE_FAILED and JOB_STATE_CANCELLED can"));
    }
  }
  absl::StatusOr<v1::Sweep> sweep = FindSweep(request.sweep());
  if (!sweep.ok()) return sweep.status();

  // A job id's part after the sweep's (`ablate plan`'s JOB column) stands for the whole id.
  std::vector<std::string> job_ids;
  for (const std::string& id : request.job_ids()) {
    job_ids.push_back(absl::StrContains(id, '-') ? id : absl::StrCat(sweep->id(), "-", id));
  }
  uint32_t dropped_left = 0;
  if (!request.states().empty()) {
    JobQuery query;
    for (const int state : request.states()) {
      query.states.push_back(static_cast<v1::JobState>(state));
    }
    absl::StatusOr<std::vector<v1::Job>> ended = store_.ListJobs(sweep->id(), query);
    if (!ended.ok()) return ended.status();
    // A job an update dropped is no cell of the spec now: named by id, it may run again.
    for (const v1::Job& job : *ended) {
      if (job.dropped()) {
        ++dropped_left;
      } else {
        job_ids.push_back(job.spec().job_id());
      }
    }
  }

  v1::RetryJobsResponse response;
  response.set_sweep_id(sweep->id());
  response.set_dropped_left(dropped_left);
  if (job_ids.empty()) return response;
  absl::StatusOr<RequeueResult> requeued =
      store_.RequeueJobs(sweep->id(), job_ids, MaxAttemptsOf(sweep->spec()));
  if (!requeued.ok()) return requeued.status();
  scheduler_.JobsQueued(requeued->requeued);
  WatchTuning(sweep->id(), sweep->spec());
  for (const v1::JobSpec& job : requeued->requeued) response.add_requeued_job_ids(job.job_id());
  for (v1::RefusedJob& refused : requeued->refused) *response.add_refused() = std::move(refused);
  ABLATE_LOG(INFO) << "retried sweep_id=" << sweep->id()
                   << " requeued=" << response.requeued_job_ids_size()
                   << " refused=" << response.refused_size();
  return response;
}

}  // namespace ablate::coordinator
