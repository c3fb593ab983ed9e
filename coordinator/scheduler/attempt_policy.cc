#include "coordinator/scheduler/attempt_policy.h"

#include "absl/strings/str_cat.h"
#include "common/trainer_exit.h"

namespace ablate::coordinator {
namespace {

// A retry while the budget lasts, else the end of the job. "attempt N of M" counts what the
// budget limits: the attempt that ended is the Nth counted against the job's max_attempts M.
AttemptOutcome RetryOrFail(const v1::Job& job, v1::AttemptState attempt_state,
                           const std::string& why) {
  AttemptOutcome outcome;
  outcome.attempt_state = attempt_state;
  const uint32_t counted = job.attempts() - job.uncounted_attempts();
  if (counted < job.max_attempts()) {
    outcome.job_state = v1::JOB_STATE_PENDING;
    outcome.message = absl::StrCat("attempt ", counted, " of ", job.max_attempts(), " ended: ", why,
                                   "; retrying");
  } else {
    outcome.job_state = v1::JOB_STATE_FAILED;
    outcome.message = job.max_attempts() > 1 ? absl::StrCat(why, " (attempt ", counted, " of ",
                                                            job.max_attempts(), ": no retry left)")
                                             : why;
  }
  return outcome;
}

}  // namespace

AttemptOutcome OutcomeOfReport(const v1::Job& job, const v1::AttemptEnded& ended,
                               const std::string& trainer_error) {
  if (ended.succeeded()) {
    return {v1::ATTEMPT_STATE_SUCCEEDED, v1::JOB_STATE_SUCCEEDED, ""};
  }
  if (ended.cancelled()) {
    return {v1::ATTEMPT_STATE_CANCELLED, v1::JOB_STATE_CANCELLED,
            ended.exit().reason().empty() ? "cancelled" : ended.exit().reason()};
  }
  const v1::ExitStatus& exit = ended.exit();
  if (ended.interrupted()) {
    // The worker's choice, not the job's fault: the attempt is given back.
    AttemptOutcome outcome;
    outcome.attempt_state = v1::ATTEMPT_STATE_LOST;
    outcome.job_state = v1::JOB_STATE_PENDING;
    outcome.message = absl::StrCat(
        "attempt ", job.attempts(),
        " ended: ", exit.reason().empty() ? "interrupted by its worker" : exit.reason(),
        "; requeued, not counted against max_attempts");
    outcome.uncounted = true;
    return outcome;
  }
  if (exit.signal() != 0) {
    std::string why =
        exit.reason().empty() ? absl::StrCat("killed by signal ", exit.signal()) : exit.reason();
    return RetryOrFail(job, v1::ATTEMPT_STATE_FAILED, why);
  }
  std::string why = !trainer_error.empty()   ? trainer_error
                    : !exit.reason().empty() ? exit.reason()
                                             : absl::StrCat("exit code ", exit.exit_code());
  if (exit.exit_code() == kTrainerFailed || StoppedBySignal(exit.exit_code())) {
    return RetryOrFail(job, v1::ATTEMPT_STATE_FAILED, why);
  }
  return {v1::ATTEMPT_STATE_FAILED, v1::JOB_STATE_FAILED, why};
}

AttemptOutcome OutcomeOfLoss(const v1::Job& job, const std::string& why) {
  return RetryOrFail(job, v1::ATTEMPT_STATE_LOST, why);
}

}  // namespace ablate::coordinator
