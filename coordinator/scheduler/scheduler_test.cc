// The scheduler's lifecycle: placement on free slots, attempts that end, leases that expire,
// workers lost at once, reconnects, restarts, drains and cancels.
#include "coordinator/scheduler/scheduler_test_fixture.h"

namespace ablate::coordinator::scheduler_test {
namespace {

TEST_F(SchedulerTest, AssignsPendingJobsInOrderOnlyToFreeSlots) {
  AddSweep({0, 0, 0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 2), link).ok());

  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].assign().job().job_id(), "s-0");
  EXPECT_THAT(sent[0].assign().slot_indices(), ElementsAre(0u));
  EXPECT_EQ(sent[1].assign().job().job_id(), "s-1");
  EXPECT_THAT(sent[1].assign().slot_indices(), ElementsAre(1u));
  EXPECT_EQ(sent[0].assign().attempt_id(), Job("s-0").current_attempt_id());
  EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_ASSIGNED);
  EXPECT_EQ(Job("s-0").worker_id(), "w1");

  // No slot is left: the third job waits.
  scheduler_->Kick();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(link->Count(), 2u);
  EXPECT_EQ(Job("s-2").state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(scheduler_->Loads()["w1"].free_slots, 0u);
}

TEST_F(SchedulerTest, EndedAttemptFreesItsSlotForTheNextJob) {
  AddSweep({0, 0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  v1::Assignment first = link->Await(1).at(0).assign();

  ASSERT_TRUE(store_
                  ->EndAttempt("s-0", first.attempt_id(), v1::ATTEMPT_STATE_SUCCEEDED, {},
                               v1::JOB_STATE_SUCCEEDED, "", 2.5)
                  .ok());
  scheduler_->AttemptEnded("w1", first.attempt_id(), v1::JOB_STATE_SUCCEEDED);

  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].assign().job().job_id(), "s-1");
  EXPECT_THAT(sent[1].assign().slot_indices(), ElementsAre(0u));
}

TEST_F(SchedulerTest, GpuJobsTakeCudaSlotsAndCpuJobsCpuSlots) {
  AddSweep({2, 0, 1});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1, 2), link).ok());

  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].assign().job().job_id(), "s-0");
  EXPECT_THAT(sent[0].assign().slot_indices(), ElementsAre(1u, 2u));
  EXPECT_EQ(sent[1].assign().job().job_id(), "s-1");
  EXPECT_THAT(sent[1].assign().slot_indices(), ElementsAre(0u));
  EXPECT_EQ(Job("s-2").state(), v1::JOB_STATE_PENDING);
}

TEST_F(SchedulerTest, ExpiredLeaseRequeuesTheJobForAnotherWorker) {
  AddSweep({0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  const uint64_t first_attempt = link->Await(1).at(0).assign().attempt_id();
  scheduler_->RemoveWorker("w1", link.get());

  clock_.Advance(kLease - absl::Seconds(1));
  scheduler_->Kick();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_ASSIGNED);

  clock_.Advance(absl::Seconds(2));
  scheduler_->Kick();
  ASSERT_TRUE(JobReaches("s-0", v1::JOB_STATE_PENDING));
  absl::StatusOr<std::vector<v1::Attempt>> attempts = store_->ListAttempts("s-0");
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ(attempts->at(0).state(), v1::ATTEMPT_STATE_LOST);

  auto other = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w2", 1), other).ok());
  EXPECT_EQ(other->Await(1).at(0).assign().job().job_id(), "s-0");
  EXPECT_EQ(Job("s-0").attempts(), 2u);

  // w1 comes back still running the first attempt (it was paused, say): killed at once, so
  // that it writes no checkpoint beside the second's.
  v1::WorkerInfo back = Worker("w1", 1);
  v1::RunningAttempt* running = back.add_running();
  running->set_job_id("s-0");
  running->set_attempt_id(first_attempt);
  running->add_slot_indices(0);
  auto again = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(back, again).ok());
  const v1::CoordinatorMessage cancel = again->Await(1).at(0);
  EXPECT_EQ(cancel.cancel().attempt_id(), first_attempt);
  EXPECT_TRUE(cancel.cancel().stale());
}

TEST_F(SchedulerTest, ExpiredLeaseFailsTheJobWithoutAttemptsLeft) {
  AddSweep({0}, /*max_attempts=*/1);
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  link->Await(1);
  scheduler_->RemoveWorker("w1", link.get());
  clock_.Advance(kLease + absl::Seconds(1));
  scheduler_->Kick();
  ASSERT_TRUE(JobReaches("s-0", v1::JOB_STATE_FAILED));
  EXPECT_EQ(Job("s-0").message(), "worker w1 lost");
}

// A worker whose token was revoked cannot reconnect, so its jobs are not left to wait out its
// lease: they are back in the queue when LoseWorker returns, with no time passing.
TEST_F(SchedulerTest, LostWorkersAttemptsAreTakenBackAtOnce) {
  AddSweep({0, 0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  const uint64_t attempt_id = link->Await(1).at(0).assign().attempt_id();

  scheduler_->LoseWorker("w1", "its token was revoked");
  EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_PENDING);
  absl::StatusOr<std::vector<v1::Attempt>> attempts = store_->ListAttempts("s-0");
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ(attempts->at(0).id(), attempt_id);
  EXPECT_EQ(attempts->at(0).state(), v1::ATTEMPT_STATE_LOST);
  // The job's own message may already say why it waits now; the attempt keeps why it ended.
  EXPECT_EQ(attempts->at(0).exit().reason(), "worker w1 lost: its token was revoked");
  EXPECT_EQ(link->Closed(), "its token was revoked");
  EXPECT_EQ(scheduler_->Loads().count("w1"), 0u);
  EXPECT_FALSE(store_->ListWorkers()->at(0).connected());

  // The end of its stream, which follows, changes nothing; the job goes to the next worker,
  // ahead of s-1.
  scheduler_->RemoveWorker("w1", link.get());
  auto other = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w2", 1), other).ok());
  EXPECT_EQ(other->Await(1).at(0).assign().job().job_id(), "s-0");
  EXPECT_EQ(Job("s-0").worker_id(), "w2");
}

// Whether its stream ended first or not, and with no attempt left to retry with.
TEST_F(SchedulerTest, LosingADisconnectedWorkerFailsAJobWithoutAttemptsLeft) {
  AddSweep({0}, /*max_attempts=*/1);
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  link->Await(1);
  scheduler_->RemoveWorker("w1", link.get());

  scheduler_->LoseWorker("w1", "its token was revoked");
  EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(Job("s-0").message(), "worker w1 lost: its token was revoked");
  // A worker the scheduler no longer knows: nothing to do.
  scheduler_->LoseWorker("w1", "its token was revoked");
  scheduler_->LoseWorker("w9", "its token was revoked");
  EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_FAILED);
}

TEST_F(SchedulerTest, ReconnectListingTheAttemptKeepsIt) {
  AddSweep({0, 0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  v1::Assignment assigned = link->Await(1).at(0).assign();
  scheduler_->RemoveWorker("w1", link.get());
  // Its job says so while the lease runs, instead of looking as ASSIGNED as ever.
  EXPECT_THAT(Job("s-0").message(), ::testing::StartsWith("worker w1 disconnected at "));
  EXPECT_THAT(Job("s-0").message(),
              ::testing::EndsWith(absl::StrCat("; the job goes back to the queue unless the "
                                               "worker is back within ",
                                               absl::FormatDuration(kLease))));

  std::shared_ptr<FakeLink> relink = ReconnectAndOutliveTheLease(assigned.attempt_id());
  // Its one slot is still taken by the kept attempt, whose job's word is taken back.
  EXPECT_EQ(relink->Count(), 0u);
  EXPECT_EQ(Job("s-1").state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(Job("s-0").message(), "");
}

TEST_F(SchedulerTest, ReconnectWithoutTheAttemptLosesItAtOnce) {
  AddSweep({0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  uint64_t first = link->Await(1).at(0).assign().attempt_id();
  scheduler_->RemoveWorker("w1", link.get());

  auto relink = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), relink).ok());
  v1::Assignment again = relink->Await(1).at(0).assign();
  EXPECT_EQ(again.job().job_id(), "s-0");
  EXPECT_NE(again.attempt_id(), first);
}

TEST_F(SchedulerTest, StaleLinkRemovalKeepsTheNewerConnection) {
  AddSweep({0});
  auto old_link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), old_link).ok());
  old_link->Await(1);
  auto new_link = std::make_shared<FakeLink>();
  v1::WorkerInfo again = WorkerRunning("w1", Job("s-0").current_attempt_id());
  ASSERT_TRUE(scheduler_->AddWorker(again, new_link).ok());

  scheduler_->RemoveWorker("w1", old_link.get());
  EXPECT_EQ(scheduler_->Loads().count("w1"), 1u);
  absl::StatusOr<std::vector<v1::Worker>> workers = store_->ListWorkers();
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_TRUE(workers->at(0).connected());
}

TEST_F(SchedulerTest, StopAttemptsSendsCancelToTheWorker) {
  AddSweep({0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  uint64_t attempt_id = link->Await(1).at(0).assign().attempt_id();

  absl::StatusOr<std::vector<v1::Job>> before = store_->CancelJobs({"s-0"}, "stop");
  ASSERT_TRUE(before.ok());
  scheduler_->StopAttempts(*before, "stop");
  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].cancel().job_id(), "s-0");
  EXPECT_EQ(sent[1].cancel().attempt_id(), attempt_id);
  EXPECT_FALSE(sent[1].cancel().stale());  // a user's cancel: the trainer checkpoints first
}

TEST_F(SchedulerTest, RestartLeasesOutAttemptsWhoseWorkerNeverReturns) {
  AddSweep({0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  link->Await(1);
  scheduler_->Stop();
  StartScheduler();

  clock_.Advance(kLease + absl::Seconds(1));
  scheduler_->Kick();
  ASSERT_TRUE(JobReaches("s-0", v1::JOB_STATE_PENDING));
}

// What a reload of the token file asks (server.cc): the workers whose attempts wait for them
// with no stream open, those a restart restored from the store included.
TEST_F(SchedulerTest, DisconnectedWorkersIncludeThoseARestartRestored) {
  AddSweep({0, 0});
  auto w1 = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), w1).ok());
  w1->Await(1);
  auto w2 = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w2", 1), w2).ok());
  w2->Await(1);
  EXPECT_TRUE(scheduler_->DisconnectedWorkers().empty());
  scheduler_->RemoveWorker("w2", w2.get());
  EXPECT_THAT(scheduler_->DisconnectedWorkers(), ElementsAre("w2"));

  scheduler_->Stop();
  StartScheduler();
  EXPECT_THAT(scheduler_->DisconnectedWorkers(), ElementsAre("w1", "w2"));
  scheduler_->LoseWorker("w2", "its token was revoked");
  EXPECT_THAT(scheduler_->DisconnectedWorkers(), ElementsAre("w1"));
}

TEST_F(SchedulerTest, RestartKeepsAttemptsTheirWorkerStillRuns) {
  AddSweep({0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  uint64_t attempt_id = link->Await(1).at(0).assign().attempt_id();
  scheduler_->Stop();
  StartScheduler();

  ReconnectAndOutliveTheLease(attempt_id);
  EXPECT_EQ(scheduler_->Loads()["w1"].free_slots, 0u);
}

TEST_F(SchedulerTest, RestartKeepsTheSlotsTheWorkerReports) {
  AddSweep({0, 0, 0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 2), link).ok());
  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  v1::Assignment on_slot_1 = sent[1].assign();
  ASSERT_THAT(on_slot_1.slot_indices(), ElementsAre(1u));
  scheduler_->Stop();
  // While the coordinator is down, s-0 ends on slot 0; s-1 still runs on slot 1.
  ASSERT_TRUE(store_
                  ->EndAttempt("s-0", sent[0].assign().attempt_id(), v1::ATTEMPT_STATE_SUCCEEDED,
                               {}, v1::JOB_STATE_SUCCEEDED, "", 2.5)
                  .ok());
  StartScheduler();

  const v1::WorkerInfo hello = Running(Worker("w1", 2), "s-1", on_slot_1.attempt_id(), {1});
  auto relink = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(hello, relink).ok());

  v1::Assignment next = relink->Await(1).at(0).assign();
  EXPECT_EQ(next.job().job_id(), "s-2");
  EXPECT_THAT(next.slot_indices(), ElementsAre(0u));
  EXPECT_EQ(Job("s-1").current_attempt_id(), on_slot_1.attempt_id());
}

TEST_F(SchedulerTest, DrainedWorkerGetsNoNewAttemptUntilItSaysHelloAgain) {
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  scheduler_->DrainWorker("w1", link.get(), "shutting down");
  AddSweep({0, 0});
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(link->Count(), 0u);
  EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(scheduler_->Loads()["w1"].free_slots, 0u);

  auto other = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w2", 1), other).ok());
  EXPECT_EQ(other->Await(1).at(0).assign().job().job_id(), "s-0");
  EXPECT_EQ(Job("s-0").worker_id(), "w2");
  scheduler_->Kick();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(link->Count(), 0u);
  EXPECT_EQ(Job("s-1").state(), v1::JOB_STATE_PENDING);

  // A drain from a stream that a newer one replaced changes nothing.
  auto relink = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), relink).ok());
  scheduler_->DrainWorker("w1", link.get(), "stale");
  EXPECT_EQ(relink->Await(1).at(0).assign().job().job_id(), "s-1");
}

TEST_F(SchedulerTest, SilentWorkerLosesItsAttemptsAfterOneLease) {
  AddSweep({0, 0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  uint64_t attempt_id = link->Await(1).at(0).assign().attempt_id();

  // The stream stays open but carries nothing.
  clock_.Advance(kLease - absl::Seconds(1));
  Round();
  EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_ASSIGNED);
  EXPECT_EQ(link->Closed(), "");

  clock_.Advance(absl::Seconds(2));
  Round();
  ASSERT_TRUE(JobReaches("s-0", v1::JOB_STATE_PENDING));
  EXPECT_THAT(link->Closed(), ::testing::HasSubstr("no message from worker w1"));
  absl::StatusOr<std::vector<v1::Attempt>> attempts = store_->ListAttempts("s-0");
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ(attempts->at(0).id(), attempt_id);
  EXPECT_EQ(attempts->at(0).state(), v1::ATTEMPT_STATE_LOST);
  EXPECT_EQ(scheduler_->Loads().count("w1"), 0u);
  EXPECT_FALSE(store_->ListWorkers()->at(0).connected());

  // The job is queued again, ahead of s-1, for the next worker.
  auto other = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w2", 1), other).ok());
  EXPECT_EQ(other->Await(1).at(0).assign().job().job_id(), "s-0");
}

TEST_F(SchedulerTest, AWorkerThatSpeaksKeepsItsLease) {
  AddSweep({0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  link->Await(1);
  for (int i = 0; i < 6; ++i) {
    clock_.Advance(kLease / 2);
    link->Hear();
    Round();
  }
  EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_ASSIGNED);
  EXPECT_EQ(link->Closed(), "");
}

// As SweepApi::SubmitSweep queues a sweep: the jobs' places are staged while the store inserts
// them and join the queue after the commit, so no worker is sent a job whose row is not
// committed; a sweep the store refuses is never queued.
TEST_F(SchedulerTest, StagedJobsArePlacedOnlyOnceStoredAndSpliced) {
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 2), link).ok());
  std::vector<v1::JobSpec> jobs = testing::MakeJobs("s", 2);
  std::optional<PendingQueue::Staged> staged;
  ASSERT_TRUE(store_
                  ->CreateSweep(testing::MakeSweep("s"), jobs, 3,
                                [&] {
                                  staged.emplace(jobs);
                                  Round();
                                })
                  .ok());
  Round();
  EXPECT_EQ(link->Count(), 0u);

  // A sweep whose second job's id is stored already: the store refuses it, its staged places
  // are dropped, and none of its rows stays.
  std::vector<v1::JobSpec> clash = testing::MakeJobs("t", 2);
  clash[1].set_job_id("s-j0");
  std::optional<PendingQueue::Staged> refused;
  EXPECT_TRUE(absl::IsAlreadyExists(
      store_->CreateSweep(testing::MakeSweep("t"), clash, 3, [&] { refused.emplace(clash); })));
  EXPECT_TRUE(refused.has_value());
  refused.reset();
  EXPECT_FALSE(store_->GetJob("t-j0").ok());

  staged->Take(std::move(jobs));
  scheduler_->JobsQueued(*std::move(staged));
  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].assign().job().job_id(), "s-j0");
  EXPECT_EQ(sent[1].assign().job().job_id(), "s-j1");
  Round();
  EXPECT_EQ(link->Count(), 2u);
}

}  // namespace
}  // namespace ablate::coordinator::scheduler_test
