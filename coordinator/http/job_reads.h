// The JSON API's reads of jobs, which take list-valued filters (query_params.h):
//   GET /api/v1/sweeps/{id}/jobs?state=failed,cancelled&page_size=100&page_token=...
//   GET /api/v1/jobs/{id}?metrics=train/loss,eval/loss&max_points=200
// Each translates the query into the request message and answers SweepApi's response as it
// is: the states filter, and the names a job has no series of, are SweepApi's.
// Stateless beyond the borrowed SweepApi; safe from any thread.
#ifndef ABLATE_COORDINATOR_HTTP_JOB_READS_H_
#define ABLATE_COORDINATOR_HTTP_JOB_READS_H_

#include "coordinator/api/sweep_api.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace ablate::coordinator {

// GET /api/v1/sweeps/{id}/jobs: ListJobsResponse of the jobs in any of the states ?state=
// names (ListJobsRequest.states), or the error naming a parameter.
void ServeListJobs(SweepApi& api, const httplib::Request& req, httplib::Response& res);

// GET /api/v1/jobs/{id}: GetJobResponse, whose unknownMetricNames lists the names in `metrics`
// the job has no point of, beside loggedMetricNames, every series it has: a 200 rather than a
// refusal, since a series may not have a point yet (eval/loss before the first evaluation, a
// GPU's on a CPU job) and the dashboard asks for such series as a matter of course.
void ServeGetJob(SweepApi& api, const httplib::Request& req, httplib::Response& res);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_HTTP_JOB_READS_H_
