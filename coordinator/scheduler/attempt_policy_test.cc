#include "coordinator/scheduler/attempt_policy.h"

#include <csignal>

#include "absl/strings/str_cat.h"
#include "common/trainer_exit.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

v1::Job JobWithAttempts(uint32_t attempts, uint32_t max_attempts, uint32_t uncounted = 0) {
  v1::Job job;
  job.set_attempts(attempts);
  job.set_max_attempts(max_attempts);
  job.set_uncounted_attempts(uncounted);
  return job;
}

TEST(AttemptPolicyTest, SuccessAndCancelEndTheJob) {
  v1::AttemptEnded ended;
  ended.set_succeeded(true);
  AttemptOutcome outcome = OutcomeOfReport(JobWithAttempts(1, 3), ended, "");
  EXPECT_EQ(outcome.attempt_state, v1::ATTEMPT_STATE_SUCCEEDED);
  EXPECT_EQ(outcome.job_state, v1::JOB_STATE_SUCCEEDED);

  ended.set_succeeded(false);
  ended.set_cancelled(true);
  outcome = OutcomeOfReport(JobWithAttempts(1, 3), ended, "");
  EXPECT_EQ(outcome.attempt_state, v1::ATTEMPT_STATE_CANCELLED);
  EXPECT_EQ(outcome.job_state, v1::JOB_STATE_CANCELLED);
}

TEST(AttemptPolicyTest, SignalRetriesWhileAttemptsRemain) {
  v1::AttemptEnded ended;
  ended.mutable_exit()->set_exit_code(-1);
  ended.mutable_exit()->set_signal(9);
  AttemptOutcome retried = OutcomeOfReport(JobWithAttempts(1, 2), ended, "");
  EXPECT_EQ(retried.attempt_state, v1::ATTEMPT_STATE_FAILED);
  EXPECT_EQ(retried.job_state, v1::JOB_STATE_PENDING);

  AttemptOutcome failed = OutcomeOfReport(JobWithAttempts(2, 2), ended, "");
  EXPECT_EQ(failed.job_state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed.message, "killed by signal 9 (attempt 2 of 2: no retry left)");
}

TEST(AttemptPolicyTest, PermanentExitCodesFailAtOnceWithTheTrainersReason) {
  for (int code : {kTrainerFailedPermanently, kTrainerBadUsage}) {
    SCOPED_TRACE(code);
    v1::AttemptEnded ended;
    ended.mutable_exit()->set_exit_code(code);
    AttemptOutcome outcome =
        OutcomeOfReport(JobWithAttempts(1, 3), ended, "step 7: non-finite loss (nan)");
    EXPECT_EQ(outcome.attempt_state, v1::ATTEMPT_STATE_FAILED);
    EXPECT_EQ(outcome.job_state, v1::JOB_STATE_FAILED);
    EXPECT_EQ(outcome.message, "step 7: non-finite loss (nan)");

    outcome = OutcomeOfReport(JobWithAttempts(1, 3), ended, "");
    EXPECT_EQ(outcome.message, absl::StrCat("exit code ", code));
  }
}

TEST(AttemptPolicyTest, AFailureAnotherAttemptMayNotMeetIsRetriedThenFails) {
  v1::AttemptEnded ended;
  ended.mutable_exit()->set_exit_code(kTrainerFailed);
  AttemptOutcome retried = OutcomeOfReport(JobWithAttempts(1, 3), ended, "CUDA error");
  EXPECT_EQ(retried.attempt_state, v1::ATTEMPT_STATE_FAILED);
  EXPECT_EQ(retried.job_state, v1::JOB_STATE_PENDING);
  EXPECT_EQ(retried.message, "attempt 1 of 3 ended: CUDA error; retrying");
  AttemptOutcome failed = OutcomeOfReport(JobWithAttempts(3, 3), ended, "CUDA error");
  EXPECT_EQ(failed.job_state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed.message, "CUDA error (attempt 3 of 3: no retry left)");
  EXPECT_FALSE(failed.uncounted);
  EXPECT_EQ(OutcomeOfReport(JobWithAttempts(1, 1), ended, "CUDA error").message, "CUDA error");
}

// Attempts its worker interrupted are neither charged nor numbered: a job of max_attempts 3
// whose first attempt a drain interrupted has two retries left after its second, which was its
// first counted one.
TEST(AttemptPolicyTest, UncountedAttemptsAreLeftOutOfTheBudgetAndTheNumbers) {
  v1::AttemptEnded ended;
  ended.mutable_exit()->set_exit_code(kTrainerFailed);
  AttemptOutcome retried = OutcomeOfReport(JobWithAttempts(2, 3, 1), ended, "CUDA error");
  EXPECT_EQ(retried.job_state, v1::JOB_STATE_PENDING);
  EXPECT_EQ(retried.message, "attempt 1 of 3 ended: CUDA error; retrying");
  EXPECT_FALSE(retried.uncounted);
  // Four attempts, three counted: the budget is used up.
  AttemptOutcome failed = OutcomeOfReport(JobWithAttempts(4, 3, 1), ended, "CUDA error");
  EXPECT_EQ(failed.job_state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed.message, "CUDA error (attempt 3 of 3: no retry left)");
  // A lost attempt is counted the same way.
  AttemptOutcome lost = OutcomeOfLoss(JobWithAttempts(3, 2, 2), "worker w lost");
  EXPECT_EQ(lost.job_state, v1::JOB_STATE_PENDING);
  EXPECT_EQ(lost.message, "attempt 1 of 2 ended: worker w lost; retrying");
}

// A trainer stopped by a signal its worker did not send (a batch system's SIGTERM) checkpointed
// first: another attempt resumes there.
TEST(AttemptPolicyTest, AStopBySomeoneElsesSignalIsRetriedThenFails) {
  v1::AttemptEnded ended;
  ended.mutable_exit()->set_exit_code(kTrainerStoppedBySignal + SIGTERM);
  const std::string why = "terminated by SIGTERM at step 1875";
  AttemptOutcome retried = OutcomeOfReport(JobWithAttempts(1, 2), ended, why);
  EXPECT_EQ(retried.job_state, v1::JOB_STATE_PENDING);
  EXPECT_EQ(retried.message, "attempt 1 of 2 ended: " + why + "; retrying");
  EXPECT_EQ(OutcomeOfReport(JobWithAttempts(2, 2), ended, why).job_state, v1::JOB_STATE_FAILED);
}

TEST(AttemptPolicyTest, InterruptionByTheWorkerRetriesEvenAfterAnExitCode) {
  v1::AttemptEnded ended;
  ended.set_interrupted(true);
  ended.mutable_exit()->set_exit_code(143);
  ended.mutable_exit()->set_reason("worker shutting down");
  AttemptOutcome retried = OutcomeOfReport(JobWithAttempts(1, 3), ended, "terminated by SIGTERM");
  EXPECT_EQ(retried.attempt_state, v1::ATTEMPT_STATE_LOST);
  EXPECT_EQ(retried.job_state, v1::JOB_STATE_PENDING);
  EXPECT_TRUE(retried.uncounted);
  // A worker's shutdown never uses up the job's retries, even its last one.
  AttemptOutcome last = OutcomeOfReport(JobWithAttempts(3, 3), ended, "");
  EXPECT_EQ(last.job_state, v1::JOB_STATE_PENDING);
  EXPECT_TRUE(last.uncounted);
  EXPECT_EQ(last.message,
            "attempt 3 ended: worker shutting down; requeued, not counted against max_attempts");
}

// A broken worker does not fail the jobs it cannot start; the scheduler's backoff keeps it from
// spinning instead.
TEST(AttemptPolicyTest, AFailedStartIsRequeuedUncountedEvenOnTheLastAttempt) {
  v1::AttemptEnded ended;
  ended.set_interrupted(true);
  ended.set_start_failed(true);
  ended.mutable_exit()->set_reason("not started: cannot run /opt/t: Permission denied");
  AttemptOutcome outcome = OutcomeOfReport(JobWithAttempts(1, 1), ended, "");
  EXPECT_EQ(outcome.attempt_state, v1::ATTEMPT_STATE_LOST);
  EXPECT_EQ(outcome.job_state, v1::JOB_STATE_PENDING);
  EXPECT_TRUE(outcome.uncounted);
  EXPECT_EQ(outcome.message,
            "attempt 1 ended: not started: cannot run /opt/t: Permission denied; requeued, not "
            "counted against max_attempts");
}

TEST(AttemptPolicyTest, LossRetriesThenFails) {
  EXPECT_EQ(OutcomeOfLoss(JobWithAttempts(1, 3), "worker w lost").job_state, v1::JOB_STATE_PENDING);
  AttemptOutcome failed = OutcomeOfLoss(JobWithAttempts(3, 3), "worker w lost");
  EXPECT_EQ(failed.attempt_state, v1::ATTEMPT_STATE_LOST);
  EXPECT_EQ(failed.job_state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed.message, "worker w lost (attempt 3 of 3: no retry left)");
}

}  // namespace
}  // namespace ablate::coordinator
