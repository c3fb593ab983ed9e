// TuningDriver over a real SQLite store: a tuned sweep submitted through SweepApi gets its
// promotions once a rung's trials end, and a driver started afresh on the same database (a
// coordinator restart) picks the tuning up where it stood and adds the cell's final job.
#include "coordinator/api/tuning_driver.h"

#include <memory>
#include <string>
#include <vector>

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

class TuningDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.feed = &feed_;
    store_ = Store::Open(dir_.File("ablate.db"), RealClock(), options).value();
    scheduler_ = std::make_unique<Scheduler>(*store_, RealClock(), SchedulerOptions{});
    telemetry_ = std::make_unique<Telemetry>(*store_);
    api_ = std::make_unique<SweepApi>(*store_, feed_, *scheduler_, *telemetry_, RealClock());
    StartDriver();
    v1::SubmitSweepRequest submit;
    submit.set_sweep_file(kSweep);
    absl::StatusOr<v1::SubmitSweepResponse> submitted = api_->SubmitSweep(submit);
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    sweep_id_ = submitted->sweep().id();
  }

  void StartDriver() {
    driver_ = std::make_unique<TuningDriver>(*store_, *scheduler_,
                                             TuningDriverOptions{absl::Milliseconds(10)});
    ASSERT_TRUE(driver_->Start().ok());
    api_->SetTuningDriver(driver_.get());
  }

  std::vector<v1::Job> Jobs() { return store_->ListJobs(sweep_id_).value(); }

  // Runs the job to SUCCEEDED with `loss` as its final eval loss, as a worker's reports do.
  void Succeed(const v1::Job& job, double loss) {
    absl::StatusOr<v1::Attempt> attempt = store_->StartAttempt(job.spec().job_id(), "w1");
    ASSERT_TRUE(attempt.ok()) << attempt.status();
    ASSERT_TRUE(store_
                    ->EndAttempt(job.spec().job_id(), attempt->id(), v1::ATTEMPT_STATE_SUCCEEDED,
                                 v1::ExitStatus(), v1::JOB_STATE_SUCCEEDED, "", loss)
                    .ok());
  }

  testing::TempDir dir_;
  ChangeFeed feed_{RealClock()};
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Telemetry> telemetry_;
  std::unique_ptr<SweepApi> api_;
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

}  // namespace
}  // namespace ablate::coordinator
