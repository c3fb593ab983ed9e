// Running cells again, on a real SQLite file: ended jobs queued again as new attempts with
// their history kept, new cells added to a stored sweep, and sweeps found by name.
#include <string>
#include <vector>

#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using ::testing::ElementsAre;
using testing::MakeJobs;
using testing::MakeSweep;

class StoreRerunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_.File("ablate.db"), clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Starts an attempt of the PENDING job and ends it with `end` (job and attempt alike).
  void RunTo(const std::string& job_id, v1::JobState job_state, v1::AttemptState attempt_state) {
    absl::StatusOr<v1::Attempt> attempt = store_->StartAttempt(job_id, "w1");
    ASSERT_TRUE(attempt.ok()) << attempt.status();
    ASSERT_TRUE(store_->MarkRunning(job_id, attempt->id()).ok());
    ASSERT_TRUE(store_
                    ->EndAttempt(job_id, attempt->id(), attempt_state, {}, job_state, "exit 1",
                                 std::nullopt)
                    .ok());
  }

  v1::Job Job(const std::string& id) { return store_->GetJob(id).value(); }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
};

std::vector<std::string> Reasons(const RequeueResult& result) {
  std::vector<std::string> out;
  for (const v1::RefusedJob& refused : result.refused) {
    out.push_back(refused.job_id() + ": " + refused.reason());
  }
  return out;
}

TEST_F(StoreRerunTest, RequeuesEndedJobsAsNewAttemptsAndRefusesTheRest) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 5), 1).ok());
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("t"), MakeJobs("t", 1), 1).ok());
  RunTo("s-j0", v1::JOB_STATE_FAILED, v1::ATTEMPT_STATE_FAILED);
  RunTo("s-j1", v1::JOB_STATE_SUCCEEDED, v1::ATTEMPT_STATE_SUCCEEDED);
  ASSERT_TRUE(store_->CancelJobs({"s-j2"}, "by user").ok());
  ASSERT_TRUE(store_->StartAttempt("s-j3", "w1").ok());

  absl::StatusOr<RequeueResult> result =
      store_->RequeueJobs("s", {"s-j0", "s-j1", "s-j2", "s-j3", "s-j4", "t-j0", "nope", "s-j0"}, 2);
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<std::string> requeued;
  for (const v1::JobSpec& spec : result->requeued) requeued.push_back(spec.job_id());
  EXPECT_THAT(requeued, ElementsAre("s-j0", "s-j2"));
  EXPECT_THAT(Reasons(*result),
              ElementsAre("s-j1: SUCCEEDED: its result stands", "s-j3: ASSIGNED: it has not ended",
                          "s-j4: PENDING: it has not ended", "t-j0: not a job of sweep s",
                          "nope: not a job of sweep s", "s-j0: PENDING: it has not ended"));

  // A fresh budget, which none of the attempts made is charged against; the history stays.
  const v1::Job failed = Job("s-j0");
  EXPECT_EQ(failed.state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(failed.attempts(), 1u);
  EXPECT_EQ(failed.uncounted_attempts(), 1u);
  EXPECT_EQ(failed.max_attempts(), 2u);
  EXPECT_EQ(failed.message(), "");
  EXPECT_EQ(Job("s-j1").state(), v1::JOB_STATE_SUCCEEDED);
  const v1::Sweep sweep = store_->GetSweep("s").value();
  EXPECT_EQ(sweep.counts().pending(), 3u);
  EXPECT_EQ(sweep.counts().failed(), 0u);
  EXPECT_EQ(sweep.counts().cancelled(), 0u);

  // The next attempt is a new one; the old one is no longer current and is fenced.
  const uint64_t old_attempt = failed.current_attempt_id();
  absl::StatusOr<v1::Attempt> next = store_->StartAttempt("s-j0", "w2");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(next->id(), old_attempt);
  EXPECT_EQ(store_->MarkRunning("s-j0", old_attempt).code(), absl::StatusCode::kFailedPrecondition);
  const std::vector<v1::Attempt> attempts = store_->ListAttempts("s-j0").value();
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].state(), v1::ATTEMPT_STATE_FAILED);
  EXPECT_EQ(attempts[1].state(), v1::ATTEMPT_STATE_ASSIGNED);
  EXPECT_EQ(Job("s-j0").attempts(), 2u);

  EXPECT_EQ(store_->RequeueJobs("nope", {"s-j0"}, 1).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreRerunTest, AddsJobsToAStoredSweepAndStoresItsNewSpec) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 2), 3).ok());
  RunTo("s-j0", v1::JOB_STATE_SUCCEEDED, v1::ATTEMPT_STATE_SUCCEEDED);
  v1::Sweep updated = MakeSweep("s");
  updated.mutable_spec()->set_description("edited");
  std::vector<v1::JobSpec> added = MakeJobs("s", 4);
  added.erase(added.begin(), added.begin() + 2);  // s-j2 and s-j3, indexes 2 and 3
  ASSERT_TRUE(store_->AddJobs(updated, added, {"s-j1"}, 5).ok());

  const v1::Sweep sweep = store_->GetSweep("s").value();
  EXPECT_EQ(sweep.spec().description(), "edited");
  EXPECT_EQ(sweep.counts().total(), 3u);  // s-j1, dropped before it ran, is counted apart
  EXPECT_EQ(sweep.counts().pending(), 2u);
  EXPECT_EQ(sweep.counts().cancelled(), 0u);
  EXPECT_EQ(sweep.counts().dropped(), 1u);
  EXPECT_EQ(sweep.counts().dropped_live(), 0u);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_ACTIVE);
  absl::StatusOr<std::vector<v1::Job>> jobs = store_->ListJobs("s");
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  std::vector<std::string> ids;
  for (const v1::Job& job : *jobs) ids.push_back(job.spec().job_id());
  EXPECT_THAT(ids, ElementsAre("s-j0", "s-j1", "s-j2", "s-j3"));
  EXPECT_EQ(Job("s-j3").max_attempts(), 5u);
  EXPECT_EQ(Job("s-j0").state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_FALSE(Job("s-j0").dropped());
  EXPECT_TRUE(Job("s-j1").dropped());
  EXPECT_FALSE(Job("s-j2").dropped());
  // Dropped while PENDING: not run, which its state and message say.
  EXPECT_TRUE(DroppedBeforeItRan(Job("s-j1")));
  EXPECT_EQ(store_->StartAttempt("s-j1", "w1").status().code(),
            absl::StatusCode::kFailedPrecondition);

  // A later update whose spec has s-j1's cell again takes it back, PENDING, and may drop
  // another; a job dropped after it ran keeps its state.
  RunTo("s-j2", v1::JOB_STATE_FAILED, v1::ATTEMPT_STATE_FAILED);
  ASSERT_TRUE(store_->AddJobs(updated, {}, {"s-j2", "s-j3"}, 5).ok());
  EXPECT_FALSE(Job("s-j1").dropped());
  EXPECT_EQ(Job("s-j1").state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(Job("s-j1").message(), "");
  EXPECT_TRUE(Job("s-j2").dropped());
  EXPECT_EQ(Job("s-j2").state(), v1::JOB_STATE_FAILED);
  EXPECT_TRUE(DroppedBeforeItRan(Job("s-j3")));
  const v1::JobCounts counts = store_->GetSweep("s").value().counts();
  EXPECT_EQ(counts.total(), 2u);
  EXPECT_EQ(counts.pending(), 1u);
  EXPECT_EQ(counts.failed(), 0u);
  EXPECT_EQ(counts.cancelled(), 0u);
  EXPECT_EQ(counts.dropped(), 2u);

  // A job id already stored refuses the whole update.
  updated.mutable_spec()->set_description("again");
  EXPECT_EQ(store_->AddJobs(updated, MakeJobs("s", 5), {"s-j0"}, 3).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(Job("s-j0").dropped());
  EXPECT_EQ(store_->GetSweep("s").value().spec().description(), "edited");
  EXPECT_EQ(store_->GetSweep("s").value().counts().total(), 2u);
  EXPECT_EQ(store_->AddJobs(MakeSweep("nope"), {}, {}, 3).code(), absl::StatusCode::kNotFound);
}

// A sweep whose only cancelled jobs are those an update left out before they ran completed; one
// its user cancelled as well did not.
TEST_F(StoreRerunTest, JobsDroppedBeforeTheyRanLeaveTheSweepCompleted) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 3), 3).ok());
  RunTo("s-j0", v1::JOB_STATE_SUCCEEDED, v1::ATTEMPT_STATE_SUCCEEDED);
  RunTo("s-j1", v1::JOB_STATE_SUCCEEDED, v1::ATTEMPT_STATE_SUCCEEDED);
  ASSERT_TRUE(store_->AddJobs(MakeSweep("s"), {}, {"s-j2"}, 3).ok());
  v1::Sweep sweep = store_->GetSweep("s").value();
  EXPECT_EQ(sweep.counts().cancelled(), 0u);
  EXPECT_EQ(sweep.counts().dropped(), 1u);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_COMPLETED);

  ASSERT_TRUE(store_->CreateSweep(MakeSweep("t"), MakeJobs("t", 3), 3).ok());
  RunTo("t-j0", v1::JOB_STATE_SUCCEEDED, v1::ATTEMPT_STATE_SUCCEEDED);
  RunTo("t-j1", v1::JOB_STATE_CANCELLED, v1::ATTEMPT_STATE_CANCELLED);
  ASSERT_TRUE(store_->AddJobs(MakeSweep("t"), {}, {"t-j2"}, 3).ok());
  EXPECT_EQ(store_->GetSweep("t").value().state(), v1::SWEEP_STATE_CANCELLED);
}

// A job that failed, or that its user cancelled, and that an update then dropped (its cell
// edited away) no longer decides the sweep's state: its jobs now are the spec's cells.
TEST_F(StoreRerunTest, JobsDroppedAfterTheyEndedLeaveTheSweepToItsCells) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 3), 3).ok());
  RunTo("s-j0", v1::JOB_STATE_SUCCEEDED, v1::ATTEMPT_STATE_SUCCEEDED);
  RunTo("s-j1", v1::JOB_STATE_FAILED, v1::ATTEMPT_STATE_FAILED);
  RunTo("s-j2", v1::JOB_STATE_CANCELLED, v1::ATTEMPT_STATE_CANCELLED);
  EXPECT_EQ(store_->GetSweep("s").value().state(), v1::SWEEP_STATE_FAILED);
  ASSERT_TRUE(store_->AddJobs(MakeSweep("s"), {}, {"s-j1"}, 3).ok());
  EXPECT_EQ(store_->GetSweep("s").value().state(), v1::SWEEP_STATE_CANCELLED);
  ASSERT_TRUE(store_->AddJobs(MakeSweep("s"), {}, {"s-j1", "s-j2"}, 3).ok());
  const v1::Sweep sweep = store_->GetSweep("s").value();
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_COMPLETED);
  EXPECT_EQ(sweep.counts().total(), 1u);
  EXPECT_EQ(sweep.counts().failed(), 0u);
  EXPECT_EQ(sweep.counts().dropped(), 2u);
  // A dropped job's cell taken back by a later update counts again.
  ASSERT_TRUE(store_->AddJobs(MakeSweep("s"), {}, {"s-j2"}, 3).ok());
  EXPECT_EQ(store_->GetSweep("s").value().state(), v1::SWEEP_STATE_FAILED);
  EXPECT_EQ(store_->GetSweep("s").value().counts().failed(), 1u);
  EXPECT_EQ(store_->GetSweep("s").value().counts().dropped(), 1u);
}

// A job an update dropped while it ran keeps its worker until it ends: the sweep stays ACTIVE
// until then, though its cells all ended, and its end moves it within the dropped count.
TEST_F(StoreRerunTest, AJobDroppedWhileItRunsKeepsTheSweepActive) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("s"), MakeJobs("s", 2), 3).ok());
  RunTo("s-j0", v1::JOB_STATE_SUCCEEDED, v1::ATTEMPT_STATE_SUCCEEDED);
  const v1::Attempt attempt = store_->StartAttempt("s-j1", "w1").value();
  ASSERT_TRUE(store_->MarkRunning("s-j1", attempt.id()).ok());
  ASSERT_TRUE(store_->AddJobs(MakeSweep("s"), {}, {"s-j1"}, 3).ok());
  v1::Sweep sweep = store_->GetSweep("s").value();
  EXPECT_EQ(sweep.counts().total(), 1u);
  EXPECT_EQ(sweep.counts().running(), 0u);
  EXPECT_EQ(sweep.counts().dropped(), 1u);
  EXPECT_EQ(sweep.counts().dropped_live(), 1u);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_ACTIVE);

  ASSERT_TRUE(store_
                  ->EndAttempt("s-j1", attempt.id(), v1::ATTEMPT_STATE_FAILED, {},
                               v1::JOB_STATE_FAILED, "exit 1", std::nullopt)
                  .ok());
  sweep = store_->GetSweep("s").value();
  EXPECT_EQ(sweep.counts().dropped(), 1u);
  EXPECT_EQ(sweep.counts().dropped_live(), 0u);
  EXPECT_EQ(sweep.counts().failed(), 0u);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_COMPLETED);
}

TEST_F(StoreRerunTest, FindsSweepsByName) {
  v1::Sweep a = MakeSweep("a-1");
  a.mutable_spec()->set_name("a");
  v1::Sweep b = MakeSweep("a-2");
  b.mutable_spec()->set_name("a");
  ASSERT_TRUE(store_->CreateSweep(a, MakeJobs("a-1", 1), 1).ok());
  ASSERT_TRUE(store_->CreateSweep(b, MakeJobs("a-2", 1), 1).ok());
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("c"), MakeJobs("c", 1), 1).ok());
  EXPECT_THAT(store_->SweepIdsNamed("a").value(), ElementsAre("a-1", "a-2"));
  EXPECT_THAT(store_->SweepIdsNamed("c").value(), ElementsAre("c"));
  EXPECT_TRUE(store_->SweepIdsNamed("a-1").value().empty());
}

// A short id is the end of a job's id after a dash, compared as text (no pattern).
TEST_F(StoreRerunTest, FindsJobIdsByTheirEnd) {
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("a"), MakeJobs("a", 2), 1).ok());
  ASSERT_TRUE(store_->CreateSweep(MakeSweep("b"), MakeJobs("b", 1), 1).ok());
  EXPECT_THAT(store_->JobIdsEndingWith("j1", 4).value(), ElementsAre("a-j1"));
  EXPECT_THAT(store_->JobIdsEndingWith("j0", 4).value(),
              ::testing::UnorderedElementsAre("a-j0", "b-j0"));
  EXPECT_EQ(store_->JobIdsEndingWith("j0", 1).value().size(), 1u);
  EXPECT_TRUE(store_->JobIdsEndingWith("0", 4).value().empty());  // "j0" follows the dash
  EXPECT_TRUE(store_->JobIdsEndingWith("%", 4).value().empty());
}

}  // namespace
}  // namespace ablate::coordinator
