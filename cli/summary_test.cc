#include "cli/summary.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::cli {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

v1::Sweep BigSweep() {
  v1::Sweep sweep;
  sweep.set_id("big-0123abcd");
  sweep.set_state(v1::SWEEP_STATE_ACTIVE);
  sweep.mutable_counts()->set_total(1000);
  sweep.mutable_counts()->set_succeeded(990);
  sweep.mutable_counts()->set_failed(10);
  return sweep;
}

v1::Job JobNumber(int i) {
  v1::Job job;
  job.mutable_spec()->set_job_id(absl::StrCat("big-0123abcd-", 100000 + i));
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  // Losses 1.000 ... 1.999 in a shuffled order: the best and worst are not the first or last.
  job.set_final_eval_loss(1.0 + ((i * 7919) % 1000) / 1000.0);
  return job;
}

TEST(SweepSummaryTest, KeepsTheBestAndWorstByLoss) {
  SweepSummary summary(3);
  for (int i = 0; i < 1000; ++i) summary.Add(JobNumber(i));
  const std::string text = summary.Render(BigSweep());
  EXPECT_THAT(text, HasSubstr("sweep big-0123abcd ACTIVE: 1000 jobs: 990 succeeded, 10 failed\n"));
  EXPECT_THAT(text, ContainsRegex("best 3 by loss:\n[^\n]*\n[^\n]* 1\\.0000\n[^\n]* 1\\.0010\n"
                                  "[^\n]* 1\\.0020\n"));
  EXPECT_THAT(text, ContainsRegex("worst 3 by loss:\n[^\n]*\n[^\n]* 1\\.9990\n[^\n]* 1\\.9980\n"
                                  "[^\n]* 1\\.9970\n"));
  EXPECT_THAT(text, Not(HasSubstr("failed (")));
  EXPECT_THAT(text, HasSubstr("ablate status big-0123abcd --all"));
}

TEST(SweepSummaryTest, ListsTheFirstFailuresAndCountsTheRest) {
  SweepSummary summary(2);
  for (int i = 0; i < 5; ++i) {
    v1::Job job = JobNumber(i);
    job.clear_final_eval_loss();
    job.set_state(v1::JOB_STATE_FAILED);
    job.set_message(absl::StrCat("trainer exited with code ", i + 1));
    summary.Add(job);
  }
  const std::string text = summary.Render(BigSweep());
  EXPECT_THAT(text, HasSubstr("failed (5):\n"));
  EXPECT_THAT(text, HasSubstr("trainer exited with code 1\n"));
  EXPECT_THAT(text, HasSubstr("trainer exited with code 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("trainer exited with code 3")));
  EXPECT_THAT(text, HasSubstr("… and 3 more failed\n"));
  EXPECT_THAT(text, Not(HasSubstr("by loss")));  // no job has a loss
}

TEST(SweepSummaryTest, TrainLossStandsInForAMissingEvalLoss) {
  SweepSummary summary(1);
  v1::Job running = JobNumber(0);
  running.clear_final_eval_loss();
  running.set_state(v1::JOB_STATE_RUNNING);
  running.set_last_loss(0.5);
  summary.Add(JobNumber(1));
  summary.Add(running);
  EXPECT_THAT(summary.Render(BigSweep()),
              ContainsRegex("best 1 by loss:\n[^\n]*\nbig-0123abcd-100000 +RUNNING"));
}

}  // namespace
}  // namespace ablate::cli
