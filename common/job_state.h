// What a job's state says about its future, as one rule for every component that asks (the
// store, the sweep and tuning logic, the coordinator's API and the CLI), so they cannot drift.
//
// Pure functions; safe from any thread.
#ifndef ABLATE_COMMON_JOB_STATE_H_
#define ABLATE_COMMON_JOB_STATE_H_

#include "ablate/v1/job.pb.h"

namespace ablate {

// True for SUCCEEDED, FAILED and CANCELLED: the states no attempt leads out of, so whoever
// waits on the job (a rung of a tuning, `ablate log -f`, a cancel) is done with it. PENDING,
// ASSIGNED and RUNNING still move (a lost attempt sends a job back to PENDING while retries
// remain), and UNSPECIFIED is no state at all. Only a user's request (RetryJobs, or an updated
// sweep taking a job back) sends a FAILED or CANCELLED job to PENDING again.
bool JobStateHasEnded(v1::JobState state);

}  // namespace ablate

#endif  // ABLATE_COMMON_JOB_STATE_H_
