#include "coordinator/http/job_reads.h"

#include <httplib.h>

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/http/json_reply.h"
#include "coordinator/http/query_params.h"

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

}  // namespace

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
  for (const std::string& given : ListParam(req, "state")) {
    absl::StatusOr<v1::JobState> state = JobStateNamed(given);
    if (!state.ok()) return ReplyError(state.status(), res);
    request.add_states(*state);
  }
  Reply(api.ListJobs(request), res);
}

void ServeGetJob(SweepApi& api, const httplib::Request& req, httplib::Response& res) {
  if (absl::Status s = CheckQueryParams(req, {{"metrics", true}, {"max_points"}}); !s.ok()) {
    return ReplyError(s, res);
  }
  v1::GetJobRequest request;
  request.set_job_id(req.matches[1]);
  for (const std::string& name : ListParam(req, "metrics")) request.add_metric_names(name);
  uint32_t max_points = 0;
  if (absl::Status s = ParseUintParam(req, "max_points", &max_points); !s.ok()) {
    return ReplyError(s, res);
  }
  request.set_max_points(max_points);
  Reply(api.GetJob(request), res);
}

}  // namespace ablate::coordinator
