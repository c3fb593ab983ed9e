// The JSON API's reads of jobs, which take list-valued filters (query_params.h):
//   GET /api/v1/sweeps/{id}/jobs?state=failed,cancelled&page_size=100&page_token=...
//   GET /api/v1/jobs/{id}?metrics=train/loss,eval/loss&max_points=200
// SweepApi's ListJobs filters by one state, so a page of several states is the merge of one
// page per state (see ListJobsInStates). GetJob answers the series it has of those named; a
// name the job has no point of is listed in the answer, beside the names it has, since a
// mistyped name would otherwise read as a series with no points yet.
// Stateless beyond the borrowed SweepApi; safe from any thread.
#ifndef ABLATE_COORDINATOR_HTTP_JOB_READS_H_
#define ABLATE_COORDINATOR_HTTP_JOB_READS_H_

#include <vector>

#include "ablate/v1/sweep_service.pb.h"
#include "absl/status/statusor.h"
#include "coordinator/api/sweep_api.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace ablate::coordinator {

// A page of the jobs in any of `states` (every job when empty), in expansion order, as
// SweepApi::ListJobs pages one state: page_size of them at most, and a next_page_token, an
// expansion index as ListJobs gives, when more follow. One ListJobs call per state.
absl::StatusOr<v1::ListJobsResponse> ListJobsInStates(SweepApi& api, v1::ListJobsRequest request,
                                                      const std::vector<v1::JobState>& states);

// GET /api/v1/sweeps/{id}/jobs: ListJobsResponse, or the error naming a parameter.
void ServeListJobs(SweepApi& api, const httplib::Request& req, httplib::Response& res);

// GET /api/v1/jobs/{id}: GetJobResponse. When `metrics` names a series the job has no point
// of, the object also holds "unknownMetrics" (those names, in the order asked) and
// "loggedMetrics" (every series the job has, by name), beside the message's own fields.
void ServeGetJob(SweepApi& api, const httplib::Request& req, httplib::Response& res);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_HTTP_JOB_READS_H_
