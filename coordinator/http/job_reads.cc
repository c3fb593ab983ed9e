#include "coordinator/http/job_reads.h"

#include <httplib.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/http/json_reply.h"
#include "coordinator/http/query_params.h"
#include "google/protobuf/struct.pb.h"

namespace ablate::coordinator {
namespace {

// A job state by its enum name, with or without JOB_STATE_, in any case ("failed").
absl::StatusOr<v1::JobState> JobStateNamed(const std::string& given) {
  std::string name = absl::AsciiStrToUpper(given);
  if (!absl::StartsWith(name, "JOB_STATE_")) name = absl::StrCat("JOB_STATE_", name);
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  if (v1::JobState_Parse(name, &state) && state != v1::JOB_STATE_UNSPECIFIED) return state;
  return absl::InvalidArgumentError(absl::StrCat(
      "state: '", given,
      "' is not a job state (pending, assigned, running, succeeded, failed or cancelled)"));
}

// The states of ?state=, each once ("failed" and "JOB_STATE_FAILED" are one).
absl::StatusOr<std::vector<v1::JobState>> StatesOf(const httplib::Request& req) {
  std::vector<v1::JobState> states;
  for (const std::string& given : ListParam(req, "state")) {
    absl::StatusOr<v1::JobState> state = JobStateNamed(given);
    if (!state.ok()) return state.status();
    if (std::find(states.begin(), states.end(), *state) == states.end()) states.push_back(*state);
  }
  return states;
}

// The names of every series job `job_id` has a point of, in name order (GetJob's order).
absl::StatusOr<std::vector<std::string>> LoggedMetrics(SweepApi& api, const std::string& job_id) {
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  request.set_max_points(1);  // only the names are read
  absl::StatusOr<v1::GetJobResponse> every = api.GetJob(request);
  if (!every.ok()) return every.status();
  std::vector<std::string> names;
  names.reserve(every->metrics_size());
  for (const v1::MetricSeries& series : every->metrics()) names.push_back(series.name());
  return names;
}

google::protobuf::Value ListValue(const std::vector<std::string>& items) {
  google::protobuf::Value value;
  google::protobuf::ListValue& list = *value.mutable_list_value();
  for (const std::string& item : items) list.add_values()->set_string_value(item);
  return value;
}

}  // namespace

absl::StatusOr<v1::ListJobsResponse> ListJobsInStates(SweepApi& api, v1::ListJobsRequest request,
                                                      const std::vector<v1::JobState>& states) {
  if (states.size() <= 1) {
    request.set_state(states.empty() ? v1::JOB_STATE_UNSPECIFIED : states.front());
    return api.ListJobs(request);
  }
  const uint32_t page_size = request.page_size() == 0
                                 ? SweepApi::kDefaultPageSize
                                 : std::min(request.page_size(), SweepApi::kMaxPageSize);
  // Each state's page holds its first page_size jobs from the token's index on, so the first
  // page_size jobs of their union, by index, are the page of all the states together.
  v1::ListJobsResponse merged;
  bool more = false;
  for (const v1::JobState state : states) {
    request.set_state(state);
    absl::StatusOr<v1::ListJobsResponse> page = api.ListJobs(request);
    if (!page.ok()) return page.status();
    more = more || !page->next_page_token().empty();
    for (v1::Job& job : *page->mutable_jobs()) *merged.add_jobs() = std::move(job);
  }
  auto& jobs = *merged.mutable_jobs();
  std::sort(jobs.pointer_begin(), jobs.pointer_end(), [](const v1::Job* a, const v1::Job* b) {
    return a->spec().index() < b->spec().index();
  });
  if (jobs.size() > static_cast<int>(page_size)) {
    more = true;
    jobs.DeleteSubrange(static_cast<int>(page_size), jobs.size() - static_cast<int>(page_size));
  }
  // ListJobs's token is the expansion index its next page starts at, whatever the state asked.
  if (more) merged.set_next_page_token(absl::StrCat(jobs.rbegin()->spec().index() + 1));
  return merged;
}

void ServeListJobs(SweepApi& api, const httplib::Request& req, httplib::Response& res) {
  if (absl::Status s = CheckQueryParams(req, {{"page_size"}, {"page_token"}, {"state", true}});
      !s.ok()) {
    return ReplyError(s, res);
  }
  v1::ListJobsRequest request;
  request.set_sweep_id(req.matches[1]);
  uint32_t page_size = 0;
  if (absl::Status s = ParseUintParam(req, "page_size", &page_size); !s.ok()) {
    return ReplyError(s, res);
  }
  request.set_page_size(page_size);
  request.set_page_token(req.get_param_value("page_token"));
  absl::StatusOr<std::vector<v1::JobState>> states = StatesOf(req);
  if (!states.ok()) return ReplyError(states.status(), res);
  Reply(ListJobsInStates(api, std::move(request), *states), res);
}

void ServeGetJob(SweepApi& api, const httplib::Request& req, httplib::Response& res) {
  if (absl::Status s = CheckQueryParams(req, {{"metrics", true}, {"max_points"}}); !s.ok()) {
    return ReplyError(s, res);
  }
  v1::GetJobRequest request;
  request.set_job_id(req.matches[1]);
  const std::vector<std::string> names = ListParam(req, "metrics");
  for (const std::string& name : names) request.add_metric_names(name);
  uint32_t max_points = 0;
  if (absl::Status s = ParseUintParam(req, "max_points", &max_points); !s.ok()) {
    return ReplyError(s, res);
  }
  request.set_max_points(max_points);
  absl::StatusOr<v1::GetJobResponse> response = api.GetJob(request);
  if (!response.ok()) return ReplyError(response.status(), res);

  absl::flat_hash_set<std::string> found;
  for (const v1::MetricSeries& series : response->metrics()) found.insert(series.name());
  std::vector<std::string> unknown;
  for (const std::string& name : names) {
    if (!found.contains(name)) unknown.push_back(name);
  }
  if (unknown.empty()) return ReplyJson(*response, res);
  // A 200 rather than a refusal: a series may not have a point yet (eval/loss before the first
  // evaluation, a GPU's on a CPU job), and the dashboard asks for such series as a matter of
  // course. The names the job has tell a typo from a series still to come.
  absl::StatusOr<std::vector<std::string>> logged =
      LoggedMetrics(api, response->job().spec().job_id());
  if (!logged.ok()) return ReplyError(logged.status(), res);
  google::protobuf::Struct notes;
  (*notes.mutable_fields())["unknownMetrics"] = ListValue(unknown);
  (*notes.mutable_fields())["loggedMetrics"] = ListValue(*logged);
  ReplyJson(*response, notes, res);
}

}  // namespace ablate::coordinator
