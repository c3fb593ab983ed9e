// TuningDriver over a real SQLite store and change feed: a tuned sweep submitted through
// SweepApi gets its promotions once a rung's trials end, and a driver started afresh on the
// same database (a coordinator restart) picks the tuning up where it stood and adds the cell's
// final job. The sweep's state, as the store reads it and as the feed carries it, stays ACTIVE
// at every rung's barrier, and is decided by the cell's final jobs, not by its trials.
#include "coordinator/api/tuning_driver.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/api/api_test_fixture.h"
#include "coordinator/api/sweep_api.h"
#include "coordinator/feed/change_feed.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"
#include "coordinator/telemetry/telemetry.h"
#include "coordinator/testing/fixtures.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

// 4 learning rates; eta 2: 4 trials of 10 steps, the best 2 for 20, the chosen one for 40.
constexpr char kSweep[] = R"(name: driven
grid:
  optimizer: [adamw]
tuning:
  parameters: {learning_rate: [1e-4, 1e-3, 1e-2, 1e-1]}
  min_steps: 10
  reduction_factor: 2
fixed: {model: tiny, steps: 40, warmup_steps: 2, context_length: 32}
)";

class TuningDriverTest : public testing::ApiTest {
 protected:
  void SetUp() override {
    testing::ApiTest::SetUp();
    if (HasFatalFailure()) return;
    StartDriver();
    v1::SubmitSweepRequest submit;
    submit.set_sweep_file(kSweep);
    absl::StatusOr<v1::SubmitSweepResponse> submitted = api_->SubmitSweep(submit);
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    sweep_id_ = submitted->sweep().id();
  }

  void StartDriver() {
    driver_ = std::make_unique<TuningDriver>(*store_, *scheduler_, feed_);
    ASSERT_TRUE(driver_->Start().ok());
    api_->SetTuningDriver(driver_.get());
  }

  std::vector<v1::Job> Jobs() { return store_->ListJobs(sweep_id_).value(); }

  v1::SweepState State() { return store_->GetSweep(sweep_id_).value().state(); }

  // Runs the job to SUCCEEDED with `loss` as its final eval loss, as a worker's reports do.
  void Succeed(const v1::Job& job, double loss) { End(job, v1::JOB_STATE_SUCCEEDED, loss); }
  // Runs the job to FAILED, without an eval loss.
  void Fail(const v1::Job& job) { End(job, v1::JOB_STATE_FAILED, std::nullopt); }

  void End(const v1::Job& job, v1::JobState state, std::optional<double> loss) {
    absl::StatusOr<v1::Attempt> attempt = store_->StartAttempt(job.spec().job_id(), "w1");
    ASSERT_TRUE(attempt.ok()) << attempt.status();
    const bool succeeded = state == v1::JOB_STATE_SUCCEEDED;
    ASSERT_TRUE(store_
                    ->EndAttempt(job.spec().job_id(), attempt->id(),
                                 succeeded ? v1::ATTEMPT_STATE_SUCCEEDED : v1::ATTEMPT_STATE_FAILED,
                                 v1::ExitStatus(), state, succeeded ? "" : "exit 1", loss)
                    .ok());
  }

  // Waits for the sweep to have `n` jobs.
  std::vector<v1::Job> WaitForJobs(size_t n) {
    EXPECT_TRUE(testing::WaitUntil([&] { return Jobs().size() == n; })) << Jobs().size();
    return Jobs();
  }

  std::unique_ptr<TuningDriver> driver_;
  std::string sweep_id_;
};

TEST_F(TuningDriverTest, PromotesWhenARungEndsAndChoosesAfterARestart) {
  std::vector<v1::Job> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 4u);
  const double losses[] = {3.0, 1.0, 2.0, 4.0};  // points 1 and 2 are the best half
  for (int i = 0; i < 3; ++i) Succeed(jobs[i], losses[i]);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Jobs().size(), 4u) << "promoted before the rung ended";
  Succeed(jobs[3], losses[3]);
  ASSERT_TRUE(testing::WaitUntil([&] { return Jobs().size() == 6; }));
  jobs = Jobs();
  EXPECT_EQ(jobs[4].spec().trial().point(), 1u);
  EXPECT_EQ(jobs[5].spec().trial().point(), 2u);
  for (int i = 4; i < 6; ++i) {
    EXPECT_EQ(jobs[i].state(), v1::JOB_STATE_PENDING);
    EXPECT_EQ(jobs[i].spec().trial().rung(), 1u);
    EXPECT_EQ(jobs[i].spec().config().steps(), 20u);
    EXPECT_EQ(jobs[i].spec().index(), static_cast<uint32_t>(i));
    EXPECT_GT(jobs[i].spec().train_flops_per_token(), 0);
  }

  // The coordinator stops; the second rung ends meanwhile; a new one resumes from the store.
  driver_.reset();
  Succeed(jobs[4], 0.9);
  Succeed(jobs[5], 0.5);
  StartDriver();
  ASSERT_TRUE(testing::WaitUntil([&] { return Jobs().size() == 7; }));
  const v1::Job final = Jobs()[6];
  ASSERT_TRUE(final.spec().has_tuned());
  EXPECT_EQ(final.spec().tuned().point(), 2u);
  EXPECT_EQ(final.spec().tuned().trial_job_id(), jobs[5].spec().job_id());
  EXPECT_DOUBLE_EQ(final.spec().config().learning_rate(), 1e-2);
  EXPECT_EQ(final.spec().config().steps(), 40u);
  EXPECT_EQ(final.state(), v1::JOB_STATE_PENDING);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Jobs().size(), 7u);  // chosen once
}

TEST_F(TuningDriverTest, ARungsBarrierReadsActiveUntilTheNextRungIsAdded) {
  // No driver: the barrier lasts until one comes, so the state between the rung's last end and
  // the next rung's jobs can be read at leisure.
  driver_.reset();
  std::vector<v1::Job> jobs = Jobs();
  ASSERT_EQ(jobs.size(), 4u);
  auto watch = feed_.Subscribe(sweep_id_);
  for (int i = 0; i < 4; ++i) Succeed(jobs[i], 1.0 + i);
  ASSERT_EQ(Jobs().size(), 4u);
  EXPECT_EQ(store_->GetSweep(sweep_id_)->counts().succeeded(), 4u);
  EXPECT_EQ(State(), v1::SWEEP_STATE_ACTIVE);
  EXPECT_EQ(store_->ListSweeps()->front().state(), v1::SWEEP_STATE_ACTIVE);
  // The feed carries the state of the commit that ended the rung, read in its transaction.
  ChangeFeed::Delta delta;
  v1::SweepState last = v1::SWEEP_STATE_UNSPECIFIED;
  while (watch->Next(&delta, absl::ZeroDuration()) == ChangeFeed::Subscription::Result::kDelta) {
    last = delta->sweep().state();
  }
  EXPECT_EQ(last, v1::SWEEP_STATE_ACTIVE);

  StartDriver();
  jobs = WaitForJobs(6);
  EXPECT_EQ(State(), v1::SWEEP_STATE_ACTIVE);
}

TEST_F(TuningDriverTest, EveryCommitReadsActiveUntilTheFinalJobEnds) {
  // Every state the feed carries, from submission to the end, with the driver stepping.
  auto watch = feed_.Subscribe(sweep_id_);
  std::vector<v1::Job> jobs = Jobs();
  for (int i = 0; i < 4; ++i) Succeed(jobs[i], 4.0 - i);
  jobs = WaitForJobs(6);
  Succeed(jobs[4], 0.9);
  Succeed(jobs[5], 0.5);
  jobs = WaitForJobs(7);
  Succeed(jobs[6], 0.4);
  EXPECT_EQ(State(), v1::SWEEP_STATE_COMPLETED);

  std::vector<v1::SweepState> states;
  ChangeFeed::Delta delta;
  while (watch->Next(&delta, absl::ZeroDuration()) == ChangeFeed::Subscription::Result::kDelta) {
    states.push_back(delta->sweep().state());
  }
  ASSERT_GE(states.size(), 9u);  // 7 ends, 2 additions
  for (size_t i = 0; i + 1 < states.size(); ++i) {
    EXPECT_EQ(states[i], v1::SWEEP_STATE_ACTIVE) << "commit " << i << " of " << states.size();
  }
  EXPECT_EQ(states.back(), v1::SWEEP_STATE_COMPLETED);
}

TEST_F(TuningDriverTest, AFailedTrialDoesNotFailTheSweep) {
  std::vector<v1::Job> jobs = Jobs();
  Fail(jobs[0]);
  Succeed(jobs[1], 1.0);
  Succeed(jobs[2], 2.0);
  Fail(jobs[3]);
  jobs = WaitForJobs(6);
  EXPECT_EQ(jobs[4].spec().trial().point(), 1u);
  EXPECT_EQ(jobs[5].spec().trial().point(), 2u);
  Succeed(jobs[4], 0.9);
  Fail(jobs[5]);  // the best of rung 0 can still fail at rung 1: never chosen
  jobs = WaitForJobs(7);
  ASSERT_TRUE(jobs[6].spec().has_tuned());
  EXPECT_EQ(jobs[6].spec().tuned().point(), 1u);
  EXPECT_EQ(State(), v1::SWEEP_STATE_ACTIVE);

  // The final job decides: it failing fails the sweep; run again and succeeding, it completes
  // the sweep, whose trials' failures stay counted.
  Fail(jobs[6]);
  EXPECT_EQ(State(), v1::SWEEP_STATE_FAILED);
  v1::RetryJobsRequest retry;
  retry.set_sweep(sweep_id_);
  retry.add_job_ids(jobs[6].spec().job_id());
  absl::StatusOr<v1::RetryJobsResponse> retried = api_->RetryJobs(retry);
  ASSERT_TRUE(retried.ok()) << retried.status();
  ASSERT_EQ(retried->requeued_job_ids_size(), 1);
  EXPECT_EQ(State(), v1::SWEEP_STATE_ACTIVE);
  Succeed(store_->GetJob(jobs[6].spec().job_id()).value(), 0.8);
  const v1::Sweep sweep = store_->GetSweep(sweep_id_).value();
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_COMPLETED);
  EXPECT_EQ(sweep.counts().failed(), 3u);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Jobs().size(), 7u);  // the driver, woken by the retry, adds nothing
}

TEST_F(TuningDriverTest, ACellWhosePointsAllFailedFailsTheSweep) {
  const std::vector<v1::Job> jobs = Jobs();
  for (const v1::Job& job : jobs) Fail(job);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Jobs().size(), 4u);  // nothing to promote or choose
  EXPECT_EQ(State(), v1::SWEEP_STATE_FAILED);
}

TEST_F(TuningDriverTest, ACancelledSweepReadsCancelled) {
  std::vector<v1::Job> jobs = Jobs();
  Fail(jobs[0]);
  v1::CancelRequest cancel;
  cancel.set_id(sweep_id_);
  ASSERT_TRUE(api_->Cancel(cancel).ok());
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Jobs().size(), 4u);
  EXPECT_EQ(State(), v1::SWEEP_STATE_CANCELLED);
}

}  // namespace
}  // namespace ablate::coordinator
