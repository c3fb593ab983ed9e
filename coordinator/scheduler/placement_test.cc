// Placement: priority, fairness across sweeps, memory fit, why a job waits, the in-memory
// queue across restarts, batched assignment, and workers whose trainers fail to start.
#include "coordinator/scheduler/scheduler_test_fixture.h"

namespace ablate::coordinator::scheduler_test {
namespace {

TEST_F(SchedulerTest, HigherPriorityIsPlacedFirst) {
  AddSweepOf("low", {0, 0}, {}, /*priority=*/0);
  AddSweepOf("high", {0, 0}, {}, /*priority=*/5);
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 2), link).ok());
  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].assign().job().job_id(), "high-0");
  EXPECT_EQ(sent[1].assign().job().job_id(), "high-1");
  EXPECT_EQ(Job("low-0").state(), v1::JOB_STATE_PENDING);
}

TEST_F(SchedulerTest, SweepsOfOnePriorityShareSlotsFairly) {
  AddSweepOf("big", std::vector<uint32_t>(1000, 0), {});
  AddSweepOf("one", {0}, {});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 2), link).ok());
  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  // The older sweep wins the tie; the one-cell sweep, with nothing running, goes next.
  EXPECT_EQ(sent[0].assign().job().job_id(), "big-0");
  EXPECT_EQ(sent[1].assign().job().job_id(), "one-0");
}

TEST_F(SchedulerTest, AJobThatFitsAnIdleSlotIsNeverStarvedByOnesAhead) {
  // 300 jobs ahead need a CUDA slot with more memory than any worker has.
  std::vector<uint32_t> gpus(300, 1);
  gpus.push_back(0);
  AddSweepOf("s", gpus, std::vector<uint64_t>(300, uint64_t{80} << 30));
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  EXPECT_EQ(link->Await(1).at(0).assign().job().job_id(), "s-300");
}

// Pinned host memory is the worker's, shared by all its slots: a job that would pin more than
// the worker has left waits, jobs behind it that fit are placed, and it runs once an attempt
// that pinned memory ends.
TEST_F(SchedulerTest, PlacesNoMorePinnedHostMemoryOnAWorkerThanItOffers) {
  constexpr uint64_t kGib = uint64_t{1} << 30;
  AddSweepOf("s", {1, 1, 1}, {}, 0, 3, {60 * kGib, 60 * kGib, 0});
  v1::WorkerInfo info = Worker("w1", 0, 3);
  info.set_pinned_memory_bytes(100 * kGib);
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(info, link).ok());
  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].assign().job().job_id(), "s-0");
  EXPECT_EQ(sent[1].assign().job().job_id(), "s-2");
  Round();
  EXPECT_EQ(link->Count(), 2u);
  EXPECT_EQ(Job("s-1").state(), v1::JOB_STATE_PENDING);

  const uint64_t first = sent[0].assign().attempt_id();
  ASSERT_TRUE(store_
                  ->EndAttempt("s-0", first, v1::ATTEMPT_STATE_SUCCEEDED, {},
                               v1::JOB_STATE_SUCCEEDED, "", 1.0)
                  .ok());
  scheduler_->AttemptEnded("w1", first, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(link->Await(3).at(2).assign().job().job_id(), "s-1");
}

// Two workers on one host (a daemon per GPU, say) each offer the host's memory: the attempts
// of both count against it, so a second 60 GiB job waits where 100 GiB are offered, while a
// worker on another host takes it.
TEST_F(SchedulerTest, WorkersOfOneHostShareItsPinnedHostMemory) {
  constexpr uint64_t kGib = uint64_t{1} << 30;
  AddSweepOf("s", {1, 1}, {}, 0, 3, {60 * kGib, 60 * kGib});
  std::vector<std::shared_ptr<FakeLink>> links;
  for (const char* id : {"w1", "w2"}) {
    v1::WorkerInfo info = Worker(id, 0, 1);
    info.set_hostname("node-a");
    info.set_pinned_memory_bytes(100 * kGib);
    links.push_back(std::make_shared<FakeLink>());
    ASSERT_TRUE(scheduler_->AddWorker(info, links.back()).ok());
  }
  ASSERT_EQ(links[0]->Await(1).size(), 1u);
  Round();
  EXPECT_EQ(links[0]->Count() + links[1]->Count(), 1u);
  EXPECT_EQ(Job("s-1").state(), v1::JOB_STATE_PENDING);

  v1::WorkerInfo elsewhere = Worker("w3", 0, 1);
  elsewhere.set_hostname("node-b");
  elsewhere.set_pinned_memory_bytes(100 * kGib);
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(elsewhere, link).ok());
  EXPECT_EQ(link->Await(1).at(0).assign().job().job_id(), "s-1");
}

// A worker that reconnects says which attempts still run there: their pinned memory stays
// counted, so the job behind them still waits; an attempt it no longer runs frees its memory.
TEST_F(SchedulerTest, AReconnectingWorkersRunningAttemptsKeepTheirPinnedMemory) {
  constexpr uint64_t kGib = uint64_t{1} << 30;
  AddSweepOf("s", {1, 1}, {}, 0, 3, {60 * kGib, 60 * kGib});
  v1::WorkerInfo info = Worker("w1", 0, 2);
  info.set_pinned_memory_bytes(100 * kGib);
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(info, link).ok());
  const v1::Assignment first = link->Await(1).at(0).assign();
  ASSERT_EQ(first.job().job_id(), "s-0");

  const v1::WorkerInfo again = Running(info, "s-0", first.attempt_id(),
                                       {first.slot_indices().begin(), first.slot_indices().end()});
  auto relink = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(again, relink).ok());
  Round();
  EXPECT_EQ(relink->Count(), 0u);
  EXPECT_EQ(Job("s-1").state(), v1::JOB_STATE_PENDING);

  // Reconnecting without it: s-0 is lost and queued again ahead of s-1, and one of the two
  // fits the memory it freed.
  auto bare = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(info, bare).ok());
  EXPECT_EQ(bare->Await(1).at(0).assign().job().job_id(), "s-0");
  Round();
  EXPECT_EQ(bare->Count(), 1u);
}

TEST_F(SchedulerTest, AJobThatNoWorkerCanPinForSaysWhy) {
  constexpr uint64_t kGib = uint64_t{1} << 30;
  AddSweepOf("s", {2}, {}, 0, 3, {60 * kGib});
  v1::WorkerInfo info = Worker("w1", 0, 2);
  info.set_pinned_memory_bytes(100 * kGib);
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(info, link).ok());
  ASSERT_TRUE(testing::WaitUntil([&] {
    return Job("s-0").message() ==
           "waiting: needs 2 CUDA slots with 120.0 GiB of pinned host memory; connected workers "
           "have 2 CUDA slots, and the most host memory one with such slots can pin is 100.0 "
           "GiB";
  })) << Job("s-0").message();
  EXPECT_EQ(link->Count(), 0u);
}

TEST_F(SchedulerTest, PlacesOnlyOnSlotsWithEnoughMemory) {
  AddSweepOf("s", {1}, {80'000'000'000});
  v1::WorkerInfo small = Worker("small", 0, 1);
  small.mutable_slots(0)->set_memory_bytes(40'000'000'000);
  auto small_link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(small, small_link).ok());
  // The message may first say that no worker is connected; it then names the small one.
  ASSERT_TRUE(testing::WaitUntil([&] {
    return Job("s-0").message() ==
           "waiting: needs 1 CUDA slot with 74.5 GiB; connected workers have 1 CUDA slot with 37.3 "
           "GiB";
  })) << Job("s-0").message();
  EXPECT_EQ(small_link->Count(), 0u);

  v1::WorkerInfo big = Worker("big", 0, 1);
  big.mutable_slots(0)->set_memory_bytes(81'000'000'000);
  auto big_link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(big, big_link).ok());
  EXPECT_EQ(big_link->Await(1).at(0).assign().job().job_id(), "s-0");
  EXPECT_EQ(Job("s-0").message(), "");
  EXPECT_EQ(small_link->Count(), 0u);
}

TEST_F(SchedulerTest, AJobNoConnectedWorkerCanTakeSaysWhy) {
  AddSweepOf("s", {1, 1}, {});
  ASSERT_TRUE(testing::WaitUntil([&] { return !Job("s-1").message().empty(); }));
  EXPECT_EQ(Job("s-1").message(), "waiting: needs 1 CUDA slot; no worker is connected");

  auto cpu = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("cpu", 2), cpu).ok());
  ASSERT_TRUE(testing::WaitUntil([&] {
    return Job("s-0").message() == "waiting: needs 1 CUDA slot; connected workers have 2 CPU slots";
  }));
  EXPECT_EQ(Job("s-1").message(), Job("s-0").message());

  // A worker that could take it, though busy, clears the reason.
  auto gpu = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("gpu", 0, 1), gpu).ok());
  EXPECT_EQ(gpu->Await(1).at(0).assign().job().job_id(), "s-0");
  ASSERT_TRUE(testing::WaitUntil([&] { return Job("s-1").message().empty(); }));
  EXPECT_EQ(Job("s-1").state(), v1::JOB_STATE_PENDING);
}

TEST_F(SchedulerTest, RestartRestoresThePendingQueueFromTheStore) {
  AddSweep({0, 0});
  scheduler_->Stop();
  StartScheduler();
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 2), link).ok());
  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].assign().job().job_id(), "s-0");
  EXPECT_EQ(sent[1].assign().job().job_id(), "s-1");
}

TEST_F(SchedulerTest, CancelledPendingJobsLeaveTheQueue) {
  AddSweep({0, 0});
  absl::StatusOr<std::vector<v1::Job>> before = store_->CancelJobs({"s-0"}, "stop");
  ASSERT_TRUE(before.ok());
  scheduler_->StopAttempts(*before, "stop");
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 2), link).ok());
  EXPECT_EQ(link->Await(1).at(0).assign().job().job_id(), "s-1");
  Round();
  EXPECT_EQ(link->Count(), 1u);
  EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(SchedulerTest, ManyAssignmentsGoOutInBatches) {
  constexpr int kJobs = 2500;  // more than two batches
  AddSweep(std::vector<uint32_t>(kJobs, 0));
  std::vector<std::shared_ptr<FakeLink>> links;
  for (int w = 0; w < 5; ++w) {
    links.push_back(std::make_shared<FakeLink>());
    ASSERT_TRUE(scheduler_->AddWorker(Worker(absl::StrCat("w", w), kJobs / 5), links.back()).ok());
  }
  size_t total = 0;
  for (auto& link : links) total += link->Await(kJobs / 5).size();
  EXPECT_EQ(total, static_cast<size_t>(kJobs));
  EXPECT_EQ(store_->GetSweep("s")->counts().assigned(), static_cast<uint32_t>(kJobs));
}

// What the worker service does with a report of a trainer that did not start on "w1": the
// attempt ends LOST and uncounted, the job is queued again, and the scheduler is told why.
void FailStart(Store& store, Scheduler& scheduler, const v1::Assignment& assignment) {
  const std::string reason = "cannot run /bin/t: Permission denied";
  v1::ExitStatus exit;
  exit.set_reason(absl::StrCat("not started: ", reason));
  ASSERT_TRUE(store
                  .EndAttempt(assignment.job().job_id(), assignment.attempt_id(),
                              v1::ATTEMPT_STATE_LOST, exit, v1::JOB_STATE_PENDING, exit.reason(),
                              std::nullopt)
                  .ok());
  scheduler.AttemptEnded("w1", assignment.attempt_id(), v1::JOB_STATE_PENDING, reason);
}

TEST_F(SchedulerTest, AWorkerWhoseTrainersFailToStartRestsThenGetsOneJobAtATime) {
  AddSweep({0, 0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 2), link).ok());
  std::vector<v1::CoordinatorMessage> sent = link->Await(2);
  ASSERT_EQ(sent.size(), 2u);
  // Both fail at once: one failure, a rest of a second, during which nothing goes out.
  FailStart(*store_, *scheduler_, sent[0].assign());
  FailStart(*store_, *scheduler_, sent[1].assign());
  Round();
  EXPECT_EQ(link->Count(), 2u);
  WorkerLoad load = scheduler_->Loads()["w1"];
  EXPECT_EQ(load.free_slots, 0u);
  ASSERT_TRUE(load.backoff.has_value());
  EXPECT_EQ(load.backoff->reason(), "cannot run /bin/t: Permission denied");
  EXPECT_EQ(load.backoff->failures(), 1u);
  EXPECT_EQ(FromProto(load.backoff->retry_at()), clock_.Now() + absl::Seconds(1));

  // After the rest, one job only (the probe), though two wait and two slots are free.
  clock_.Advance(absl::Seconds(1));
  sent = link->Await(3);
  ASSERT_EQ(sent.size(), 3u);
  Round();
  EXPECT_EQ(link->Count(), 3u);
  // It fails too: two seconds now.
  FailStart(*store_, *scheduler_, sent[2].assign());
  clock_.Advance(absl::Seconds(1));
  Round();
  EXPECT_EQ(link->Count(), 3u);
  EXPECT_EQ(scheduler_->Loads()["w1"].backoff->failures(), 2u);
  clock_.Advance(absl::Seconds(1));
  sent = link->Await(4);
  ASSERT_EQ(sent.size(), 4u);

  // Its trainer starts: the worker takes work as before, and the other job goes out.
  scheduler_->AttemptStarted("w1", sent[3].assign().attempt_id());
  sent = link->Await(5);
  ASSERT_EQ(sent.size(), 5u);
  EXPECT_NE(sent[4].assign().job().job_id(), sent[3].assign().job().job_id());
  EXPECT_FALSE(scheduler_->Loads()["w1"].backoff.has_value());
  // Each failed attempt was given back, uncounted by the worker service's rule.
  EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_ASSIGNED);
  EXPECT_EQ(Job("s-1").state(), v1::JOB_STATE_ASSIGNED);
}

TEST_F(SchedulerTest, AJobAnotherWorkerFailedToStartGoesToAHealthyOne) {
  AddSweep({0});
  auto broken = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), broken).ok());
  const v1::Assignment first = broken->Await(1).at(0).assign();
  auto healthy = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w2", 1), healthy).ok());
  FailStart(*store_, *scheduler_, first);
  EXPECT_EQ(healthy->Await(1).at(0).assign().job().job_id(), "s-0");
  EXPECT_EQ(Job("s-0").worker_id(), "w2");
  EXPECT_EQ(broken->Count(), 1u);
  // The other end of an attempt (a job that failed) is no reason to back off.
  EXPECT_FALSE(scheduler_->Loads()["w2"].backoff.has_value());
}

}  // namespace
}  // namespace ablate::coordinator::scheduler_test
