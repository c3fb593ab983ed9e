// What becomes of a job when one of its attempts ends: the rule both the worker service (a
// worker reported the end) and the scheduler (a lease ran out) apply, kept in one place so the
// two cannot drift. Pure functions; safe from any thread.
#ifndef ABLATE_COORDINATOR_SCHEDULER_ATTEMPT_POLICY_H_
#define ABLATE_COORDINATOR_SCHEDULER_ATTEMPT_POLICY_H_

#include <string>

#include "ablate/v1/job.pb.h"
#include "ablate/v1/worker.pb.h"

namespace ablate::coordinator {

// The arguments of Store::EndAttempt that follow from how an attempt ended.
struct AttemptOutcome {
  v1::AttemptState attempt_state = v1::ATTEMPT_STATE_UNSPECIFIED;
  v1::JobState job_state = v1::JOB_STATE_UNSPECIFIED;
  std::string message;  // the job's message: why it failed, or why it was retried
  // The attempt costs the job none of its max_attempts (AttemptEnd::uncounted).
  bool uncounted = false;
};

// A worker reported the end of the current attempt of `job`. `trainer_error` is the error of
// the trainer's finished event, empty when there was none.
//  - succeeded: attempt and job SUCCEEDED.
//  - cancelled: attempt and job CANCELLED.
//  - interrupted by its worker (shutdown, drain, a trainer it could not start: start_failed):
//    the attempt LOST, and the job goes back to PENDING to resume from its checkpoint, the
//    attempt uncounted: restarting workers, or a broken one, never uses up a job's retries
//    (the scheduler backs off from a worker that fails to start trainers, so it cannot spin).
//    Being none of the counted ones, it is named by its number among all the job's attempts,
//    as `ablate log` names it ("attempt 3 ended: ...; requeued, not counted ...").
//  - killed by a signal the coordinator did not ask for (OOM killer, node drain, preemption):
//    the attempt FAILED, and the job goes back to PENDING while attempts remain, else FAILED.
//  - exit code kTrainerFailed (common/trainer_exit.h: a failure another attempt may not meet,
//    such as a lost device): the attempt FAILED, and the job goes back to PENDING while
//    attempts remain, else FAILED.
//  - any other exit code (kTrainerFailedPermanently: a full disk, a diverged run; or bad
//    usage): attempt and job FAILED, no retry, since running the same config again fails the
//    same way.
// Retries are bounded by the attempts counted against the job's max_attempts (Job.attempts
// less Job.uncounted_attempts), and messages number the attempt among those: "attempt 1 of 3
// ended: ...; retrying" for the first counted one, whatever attempts its worker interrupted
// before it. A job that fails once its budget is used up says so after the reason, when it had
// more than one ("(attempt 3 of 3: no retry left)").
AttemptOutcome OutcomeOfReport(const v1::Job& job, const v1::AttemptEnded& ended,
                               const std::string& trainer_error);

// The current attempt of `job` is gone without a report (its worker vanished): the attempt is
// LOST, and the job goes back to PENDING while attempts remain, else FAILED with `why`.
AttemptOutcome OutcomeOfLoss(const v1::Job& job, const std::string& why);

}  // namespace ablate::coordinator

#endif  // ABLATE_COORDINATOR_SCHEDULER_ATTEMPT_POLICY_H_
