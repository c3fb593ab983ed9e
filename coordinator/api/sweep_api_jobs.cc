// A sweep's jobs read: a page of them by state (ListJobs) and one with its attempts and metric
// series (GetJob). Part of SweepApi (sweep_api.h).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "coordinator/api/sweep_api.h"

namespace ablate::coordinator {
namespace {

constexpr int kDefaultMaxPoints = 1000;

// The states a ListJobs request filters by, each once: `states` with the singular `state` of
// older clients, JOB_STATE_UNSPECIFIED naming none; empty: every job. InvalidArgument naming
// the field of a value no JobState has (proto3 keeps unknown enum values as numbers).
absl::StatusOr<std::vector<v1::JobState>> StatesAsked(const v1::ListJobsRequest& request) {
  std::vector<v1::JobState> states;
  auto add = [&](int value, const char* field) {
    if (!v1::JobState_IsValid(value)) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", value, " is not a job state"));
    }
    const auto state = static_cast<v1::JobState>(value);
    if (state != v1::JOB_STATE_UNSPECIFIED &&
        std::find(states.begin(), states.end(), state) == states.end()) {
      states.push_back(state);
    }
    return absl::OkStatus();
  };
  for (const int value : request.states()) {
    if (absl::Status s = add(value, "states"); !s.ok()) return s;
  }
  if (absl::Status s = add(request.state(), "state"); !s.ok()) return s;
  return states;
}

// Those of `asked` not in `logged` (sorted), each once, in the order asked.
std::vector<std::string> UnknownNames(const google::protobuf::RepeatedPtrField<std::string>& asked,
                                      const std::vector<std::string>& logged) {
  std::vector<std::string> unknown;
  absl::flat_hash_set<std::string> named;
  for (const std::string& name : asked) {
    if (!std::binary_search(logged.begin(), logged.end(), name) && named.insert(name).second) {
      unknown.push_back(name);
    }
  }
  return unknown;
}

}  // namespace

absl::StatusOr<v1::ListJobsResponse> SweepApi::ListJobs(const v1::ListJobsRequest& request) {
  telemetry_.CountRpc("ListJobs");
  if (absl::Status s = Require(request.sweep_id(), "sweep_id"); !s.ok()) return s;
  // The token is the expansion index the next page starts at; it stays valid however the
  // jobs change, since a sweep's jobs and their order are fixed when it is stored.
  JobQuery query;
  if (!request.page_token().empty() &&
      !absl::SimpleAtoi(request.page_token(), &query.start_index)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token '", request.page_token(), "' is not one ListJobs gave; start without one"));
  }
  absl::StatusOr<std::vector<v1::JobState>> states = StatesAsked(request);
  if (!states.ok()) return states.status();
  query.states = *std::move(states);
  const uint32_t page_size =
      request.page_size() == 0 ? kDefaultPageSize : std::min(request.page_size(), kMaxPageSize);
  // One job more than the page tells whether another page follows.
  query.limit = static_cast<int>(page_size) + 1;
  absl::StatusOr<std::vector<v1::Job>> jobs = store_.ListJobs(request.sweep_id(), query);
  // Not an id: a name, read after the id, so that a page by id costs no second lookup.
  if (absl::IsNotFound(jobs.status())) {
    absl::StatusOr<std::string> id = SweepIdNamed(request.sweep_id(), jobs.status());
    if (!id.ok()) return id.status();
    jobs = store_.ListJobs(*id, query);
  }
  if (!jobs.ok()) return jobs.status();
  v1::ListJobsResponse response;
  if (jobs->size() > page_size) {
    jobs->resize(page_size);
    response.set_next_page_token(absl::StrCat(jobs->back().spec().index() + 1));
  }
  for (v1::Job& job : *jobs) *response.add_jobs() = std::move(job);
  return response;
}

void SweepApi::SetFolders(const std::string& job_id, std::vector<v1::Attempt>& attempts) {
  absl::StatusOr<std::vector<v1::Worker>> workers = store_.ListWorkers();
  if (!workers.ok()) return;  // the folders are a hint: the answer goes without them
  absl::flat_hash_map<std::string, std::string> work_dirs;
  for (const v1::Worker& worker : *workers) {
    if (!worker.info().work_dir().empty()) {
      work_dirs[worker.info().worker_id()] = worker.info().work_dir();
    }
  }
  for (v1::Attempt& attempt : attempts) {
    auto it = work_dirs.find(attempt.worker_id());
    if (it == work_dirs.end() || attempt.never_started()) continue;
    attempt.set_folder(absl::StrCat(it->second, "/", job_id, "/attempt-", attempt.id(), "/"));
  }
}

absl::StatusOr<v1::GetJobResponse> SweepApi::GetJob(const v1::GetJobRequest& request) {
  telemetry_.CountRpc("GetJob");
  if (absl::Status s = Require(request.job_id(), "job_id"); !s.ok()) return s;
  absl::StatusOr<v1::Job> job = FindJob(request.job_id());
  if (!job.ok()) return job.status();
  const std::string& job_id = job->spec().job_id();
  absl::StatusOr<std::vector<v1::Attempt>> attempts = store_.ListAttempts(job_id);
  if (!attempts.ok()) return attempts.status();
  std::vector<std::string> names(request.metric_names().begin(), request.metric_names().end());
  int max_points =
      request.max_points() == 0 ? kDefaultMaxPoints : static_cast<int>(request.max_points());
  // Every answer names the series the job has, not only one that asks for a name it lacks:
  // reading the asked series decodes every point of the job whatever the names, so the names
  // cost no more reading, and a client needs no second call to tell a typo from a series to
  // come.
  std::vector<std::string> logged;
  absl::StatusOr<std::vector<v1::MetricSeries>> metrics =
      store_.ReadMetrics(job_id, names, max_points, &logged);
  if (!metrics.ok()) return metrics.status();

  SetFolders(job_id, *attempts);
  v1::GetJobResponse response;
  *response.mutable_job() = *std::move(job);
  for (v1::Attempt& attempt : *attempts) *response.add_attempts() = std::move(attempt);
  for (v1::MetricSeries& series : *metrics) *response.add_metrics() = std::move(series);
  for (std::string& name : UnknownNames(request.metric_names(), logged)) {
    response.add_unknown_metric_names(std::move(name));
  }
  for (std::string& name : logged) response.add_logged_metric_names(std::move(name));
  return response;
}

}  // namespace ablate::coordinator
