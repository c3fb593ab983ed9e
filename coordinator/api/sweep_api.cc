#include "coordinator/api/sweep_api.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "sweep/grid.h"
#include "google/protobuf/util/message_differencer.h"

namespace ablate::coordinator {
namespace {

// SweepSpec.max_attempts of 0 means this many.
constexpr uint32_t kDefaultMaxAttempts = 3;
constexpr int kDefaultMaxPoints = 1000;
constexpr char kCancelledByUser[] = "cancelled by user";

bool HasEnded(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

bool HasEnded(const v1::Sweep& sweep) {
  return sweep.state() == v1::SWEEP_STATE_COMPLETED || sweep.state() == v1::SWEEP_STATE_FAILED ||
         sweep.state() == v1::SWEEP_STATE_CANCELLED;
}

absl::Status Require(const std::string& value, const char* field) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  return absl::OkStatus();
}

}  // namespace

SweepApi::SweepApi(Store& store, Scheduler& scheduler, Telemetry& telemetry, Clock& clock)
    : store_(store), scheduler_(scheduler), telemetry_(telemetry), clock_(clock) {}

absl::StatusOr<v1::SubmitSweepResponse> SweepApi::SubmitSweep(
    const v1::SubmitSweepRequest& request) {
  telemetry_.CountRpc("SubmitSweep");
  // A resubmission is recognised by the spec's id alone, before expanding a grid of perhaps
  // 100,000 cells: a stored sweep's spec was valid when it was stored.
  v1::SubmitSweepResponse response;
  absl::StatusOr<v1::Sweep> stored = store_.GetSweep(sweep::SweepId(request.spec()));
  if (stored.ok()) {
    response.set_already_existed(true);
    *response.mutable_sweep() = *std::move(stored);
    return response;
  }
  if (stored.status().code() != absl::StatusCode::kNotFound) return stored.status();

  absl::StatusOr<sweep::Expansion> expansion = sweep::ExpandSweep(request.spec());
  if (!expansion.ok()) return expansion.status();
  for (const std::string& dropped : expansion->dropped) response.add_dropped_cells(dropped);

  v1::Sweep sweep;
  sweep.set_id(expansion->sweep_id);
  *sweep.mutable_spec() = request.spec();
  *sweep.mutable_created_at() = ToProto(clock_.Now());
  uint32_t max_attempts =
      request.spec().max_attempts() == 0 ? kDefaultMaxAttempts : request.spec().max_attempts();
  absl::Status created = store_.CreateSweep(sweep, expansion->jobs, max_attempts);
  if (created.code() == absl::StatusCode::kAlreadyExists) {
    // A concurrent submission of the same spec stored it first.
    response.set_already_existed(true);
  } else if (!created.ok()) {
    return created;
  } else {
    telemetry_.CountSweepSubmitted();
    scheduler_.Kick();
    ABLATE_LOG(INFO) << "sweep submitted sweep_id=" << sweep.id()
                     << " jobs=" << expansion->jobs.size()
                     << " dropped=" << expansion->dropped.size();
  }
  stored = store_.GetSweep(expansion->sweep_id);
  if (!stored.ok()) return stored.status();
  *response.mutable_sweep() = *std::move(stored);
  return response;
}

absl::StatusOr<v1::Sweep> SweepApi::GetSweep(const v1::GetSweepRequest& request) {
  telemetry_.CountRpc("GetSweep");
  if (absl::Status s = Require(request.sweep_id(), "sweep_id"); !s.ok()) return s;
  return store_.GetSweep(request.sweep_id());
}

absl::StatusOr<v1::ListSweepsResponse> SweepApi::ListSweeps(const v1::ListSweepsRequest&) {
  telemetry_.CountRpc("ListSweeps");
  absl::StatusOr<std::vector<v1::Sweep>> sweeps = store_.ListSweeps();
  if (!sweeps.ok()) return sweeps.status();
  v1::ListSweepsResponse response;
  for (v1::Sweep& sweep : *sweeps) *response.add_sweeps() = std::move(sweep);
  return response;
}

absl::StatusOr<v1::ListJobsResponse> SweepApi::ListJobs(const v1::ListJobsRequest& request) {
  telemetry_.CountRpc("ListJobs");
  if (absl::Status s = Require(request.sweep_id(), "sweep_id"); !s.ok()) return s;
  // The token is the expansion index the next page starts at; it stays valid however the
  // jobs change, since a sweep's jobs and their order are fixed when it is stored.
  uint32_t start = 0;
  if (!request.page_token().empty() && !absl::SimpleAtoi(request.page_token(), &start)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token '", request.page_token(), "' is not one ListJobs gave; start without one"));
  }
  const uint32_t page_size =
      request.page_size() == 0 ? kDefaultPageSize : std::min(request.page_size(), kMaxPageSize);
  absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(request.sweep_id());
  if (!jobs.ok()) return jobs.status();
  v1::ListJobsResponse response;
  for (v1::Job& job : *jobs) {
    if (job.spec().index() < start) continue;
    if (static_cast<uint32_t>(response.jobs_size()) == page_size) {
      response.set_next_page_token(absl::StrCat(job.spec().index()));
      break;
    }
    *response.add_jobs() = std::move(job);
  }
  return response;
}

absl::StatusOr<v1::GetJobResponse> SweepApi::GetJob(const v1::GetJobRequest& request) {
  telemetry_.CountRpc("GetJob");
  if (absl::Status s = Require(request.job_id(), "job_id"); !s.ok()) return s;
  absl::StatusOr<v1::Job> job = store_.GetJob(request.job_id());
  if (!job.ok()) return job.status();
  absl::StatusOr<std::vector<v1::Attempt>> attempts = store_.ListAttempts(request.job_id());
  if (!attempts.ok()) return attempts.status();
  std::vector<std::string> names(request.metric_names().begin(), request.metric_names().end());
  int max_points =
      request.max_points() == 0 ? kDefaultMaxPoints : static_cast<int>(request.max_points());
  absl::StatusOr<std::vector<v1::MetricSeries>> metrics =
      store_.ReadMetrics(request.job_id(), names, max_points);
  if (!metrics.ok()) return metrics.status();

  v1::GetJobResponse response;
  *response.mutable_job() = *std::move(job);
  for (v1::Attempt& attempt : *attempts) *response.add_attempts() = std::move(attempt);
  for (v1::MetricSeries& series : *metrics) *response.add_metrics() = std::move(series);
  return response;
}

absl::StatusOr<v1::CancelResponse> SweepApi::Cancel(const v1::CancelRequest& request) {
  telemetry_.CountRpc("Cancel");
  if (absl::Status s = Require(request.id(), "id"); !s.ok()) return s;
  std::vector<std::string> job_ids;
  absl::StatusOr<v1::Sweep> sweep = store_.GetSweep(request.id());
  if (sweep.ok()) {
    absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(request.id());
    if (!jobs.ok()) return jobs.status();
    for (const v1::Job& job : *jobs) {
      if (!HasEnded(job.state())) job_ids.push_back(job.spec().job_id());
    }
  } else if (sweep.status().code() == absl::StatusCode::kNotFound) {
    absl::StatusOr<v1::Job> job = store_.GetJob(request.id());
    if (job.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat("no sweep or job with id '", request.id(), "'"));
    }
    if (!job.ok()) return job.status();
    job_ids.push_back(request.id());
  } else {
    return sweep.status();
  }

  v1::CancelResponse response;
  if (job_ids.empty()) return response;
  absl::StatusOr<std::vector<v1::Job>> before = store_.CancelJobs(job_ids, kCancelledByUser);
  if (!before.ok()) return before.status();
  scheduler_.StopAttempts(*before, kCancelledByUser);
  for (const v1::Job& job : *before) response.add_cancelled_job_ids(job.spec().job_id());
  ABLATE_LOG(INFO) << "cancelled id=" << request.id()
                   << " jobs=" << response.cancelled_job_ids_size();
  return response;
}

absl::StatusOr<v1::ListWorkersResponse> SweepApi::ListWorkers(const v1::ListWorkersRequest&) {
  telemetry_.CountRpc("ListWorkers");
  absl::StatusOr<std::vector<v1::Worker>> workers = store_.ListWorkers();
  if (!workers.ok()) return workers.status();
  absl::flat_hash_map<std::string, WorkerLoad> loads = scheduler_.Loads();
  v1::ListWorkersResponse response;
  for (v1::Worker& worker : *workers) {
    auto load = loads.find(worker.info().worker_id());
    if (worker.connected() && load != loads.end()) {
      worker.set_free_slots(load->second.free_slots);
      worker.clear_job_ids();
      for (const std::string& job_id : load->second.job_ids) worker.add_job_ids(job_id);
    }
    *response.add_workers() = std::move(worker);
  }
  return response;
}

absl::Status SweepApi::Watch(const v1::WatchSweepRequest& request, const SnapshotSink& sink,
                             const StopCheck& stop, absl::Duration poll) {
  telemetry_.CountRpc("WatchSweep");
  if (absl::Status s = Require(request.sweep_id(), "sweep_id"); !s.ok()) return s;
  // The version is read before the snapshot, so no change can slip between the two.
  int64_t seen = store_.Version();
  absl::Time last_read = absl::Now();
  absl::StatusOr<v1::SweepSnapshot> snapshot = Snapshot(request.sweep_id());
  if (!snapshot.ok()) return snapshot.status();
  if (!sink(*snapshot)) return absl::OkStatus();
  while (!HasEnded(snapshot->sweep())) {
    if (stop()) return absl::OkStatus();
    int64_t version = store_.WaitForChange(seen, poll);
    if (version == seen) continue;
    absl::Duration since_read = absl::Now() - last_read;
    if (since_read < poll) {
      absl::SleepFor(poll - since_read);
      version = store_.Version();
    }
    seen = version;
    last_read = absl::Now();
    absl::StatusOr<v1::SweepSnapshot> next = Snapshot(request.sweep_id());
    if (!next.ok()) return next.status();
    // Changes to other sweeps wake every watcher; only this sweep's changes are sent.
    if (google::protobuf::util::MessageDifferencer::Equals(*next, *snapshot)) continue;
    snapshot = std::move(next);
    if (!sink(*snapshot)) return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SweepSnapshot> SweepApi::Snapshot(const std::string& sweep_id) {
  absl::StatusOr<v1::Sweep> sweep = store_.GetSweep(sweep_id);
  if (!sweep.ok()) return sweep.status();
  absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(sweep_id);
  if (!jobs.ok()) return jobs.status();
  v1::SweepSnapshot snapshot;
  *snapshot.mutable_sweep() = *std::move(sweep);
  for (v1::Job& job : *jobs) *snapshot.add_jobs() = std::move(job);
  return snapshot;
}

}  // namespace ablate::coordinator
