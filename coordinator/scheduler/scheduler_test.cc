#include "coordinator/scheduler/scheduler.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator {
namespace {

using ::testing::ElementsAre;
using testing::FakeClock;
using testing::TempDir;

constexpr absl::Duration kLease = absl::Seconds(30);

// Records what the scheduler sends; what a worker's stream would carry. The test says when the
// worker speaks (Hear).
class FakeLink : public WorkerLink {
 public:
  bool Send(const v1::CoordinatorMessage& message) override {
    absl::MutexLock lock(&mu_);
    if (!closed_.empty()) return false;
    messages_.push_back(message);
    return true;
  }
  uint64_t Received() const override { return received_.load(); }
  void Close(const std::string& reason) override {
    absl::MutexLock lock(&mu_);
    closed_ = reason;
  }
  void Hear() { received_.fetch_add(1); }
  std::string Closed() {
    absl::MutexLock lock(&mu_);
    return closed_;
  }
  // Waits until `count` messages arrived; returns them all.
  std::vector<v1::CoordinatorMessage> Await(size_t count) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return messages_.size() >= count; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(5));
    return messages_;
  }
  size_t Count() {
    absl::MutexLock lock(&mu_);
    return messages_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::CoordinatorMessage> messages_ ABSL_GUARDED_BY(mu_);
  std::string closed_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> received_{0};
};

v1::WorkerInfo Worker(const std::string& id, int cpu_slots, int cuda_slots = 0) {
  v1::WorkerInfo info;
  info.set_worker_id(id);
  for (int i = 0; i < cpu_slots; ++i) {
    v1::Slot* slot = info.add_slots();
    slot->set_kind(v1::DEVICE_KIND_CPU);
    slot->set_index(static_cast<uint32_t>(i));
  }
  for (int i = 0; i < cuda_slots; ++i) {
    v1::Slot* slot = info.add_slots();
    slot->set_kind(v1::DEVICE_KIND_CUDA);
    slot->set_index(static_cast<uint32_t>(cpu_slots + i));
  }
  return info;
}

// The hello of worker `id` with one CPU slot, reconnecting while it still runs `attempt_id` of
// job s-0.
v1::WorkerInfo WorkerRunning(const std::string& id, uint64_t attempt_id) {
  v1::WorkerInfo info = Worker(id, 1);
  v1::RunningAttempt* running = info.add_running();
  running->set_job_id("s-0");
  running->set_attempt_id(attempt_id);
  return info;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(dir_.File("ablate.db"), clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    StartScheduler();
  }

  void StartScheduler() {
    SchedulerOptions options;
    options.lease_timeout = kLease;
    options.tick = absl::Milliseconds(10);
    scheduler_ = std::make_unique<Scheduler>(*store_, clock_, options);
    ASSERT_TRUE(scheduler_->Start().ok());
  }

  // A sweep "s" of jobs s-0, s-1, ... asking for `gpus[i]` GPUs each.
  void AddSweep(const std::vector<uint32_t>& gpus, uint32_t max_attempts = 3) {
    AddSweepOf("s", gpus, {}, 0, max_attempts);
  }

  // A sweep `id` of jobs <id>-0, <id>-1, ... asking for `gpus[i]` GPUs and `memory[i]` bytes
  // (0 when not given) each, at `priority`; stored, then queued as the API does.
  void AddSweepOf(const std::string& id, const std::vector<uint32_t>& gpus,
                  const std::vector<uint64_t>& memory, int32_t priority = 0,
                  uint32_t max_attempts = 3) {
    v1::Sweep sweep;
    sweep.set_id(id);
    sweep.mutable_spec()->set_name(id);
    sweep.mutable_spec()->set_priority(priority);
    *sweep.mutable_created_at() = ToProto(clock_.Now());
    std::vector<v1::JobSpec> jobs;
    for (size_t i = 0; i < gpus.size(); ++i) {
      v1::JobSpec& job = jobs.emplace_back();
      job.set_job_id(absl::StrCat(id, "-", i));
      job.set_sweep_id(id);
      job.set_index(static_cast<uint32_t>(i));
      job.set_priority(priority);
      job.set_memory_bytes(i < memory.size() ? memory[i] : 0);
      job.mutable_config()->set_gpus(gpus[i]);
      job.mutable_config()->set_learning_rate(0.001 * static_cast<double>(i + 1));
    }
    absl::Status created = store_->CreateSweep(sweep, jobs, max_attempts);
    ASSERT_TRUE(created.ok()) << created;
    scheduler_->JobsQueued(jobs);
  }

  // Lets the scheduler's thread run a round or two.
  void Round() {
    scheduler_->Kick();
    absl::SleepFor(absl::Milliseconds(50));
  }

  v1::Job Job(const std::string& id) {
    absl::StatusOr<v1::Job> job = store_->GetJob(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : v1::Job();
  }

  // Reconnects w1 listing `attempt_id` of s-0, lets twice the lease pass, and checks that the
  // attempt stayed current. Returns the new link.
  std::shared_ptr<FakeLink> ReconnectAndOutliveTheLease(uint64_t attempt_id) {
    auto relink = std::make_shared<FakeLink>();
    EXPECT_TRUE(scheduler_->AddWorker(WorkerRunning("w1", attempt_id), relink).ok());
    // The worker speaks (heartbeats) every half lease.
    for (int i = 0; i < 4; ++i) {
      clock_.Advance(kLease / 2);
      relink->Hear();
      Round();
    }
    EXPECT_EQ(Job("s-0").state(), v1::JOB_STATE_ASSIGNED);
    EXPECT_EQ(Job("s-0").current_attempt_id(), attempt_id);
    return relink;
  }

  bool JobReaches(const std::string& id, v1::JobState state) {
    return testing::WaitUntil([&] { return Job(id).state() == state; });
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> scheduler_;
};

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
  link->Await(1);
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

TEST_F(SchedulerTest, ReconnectListingTheAttemptKeepsIt) {
  AddSweep({0, 0});
  auto link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(Worker("w1", 1), link).ok());
  v1::Assignment assigned = link->Await(1).at(0).assign();
  scheduler_->RemoveWorker("w1", link.get());

  std::shared_ptr<FakeLink> relink = ReconnectAndOutliveTheLease(assigned.attempt_id());
  // Its one slot is still taken by the kept attempt.
  EXPECT_EQ(relink->Count(), 0u);
  EXPECT_EQ(Job("s-1").state(), v1::JOB_STATE_PENDING);
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

  v1::WorkerInfo hello = Worker("w1", 2);
  v1::RunningAttempt* running = hello.add_running();
  running->set_job_id("s-1");
  running->set_attempt_id(on_slot_1.attempt_id());
  running->add_slot_indices(1);
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

TEST_F(SchedulerTest, PlacesOnlyOnSlotsWithEnoughMemory) {
  AddSweepOf("s", {1}, {80'000'000'000});
  v1::WorkerInfo small = Worker("small", 0, 1);
  small.mutable_slots(0)->set_memory_bytes(40'000'000'000);
  auto small_link = std::make_shared<FakeLink>();
  ASSERT_TRUE(scheduler_->AddWorker(small, small_link).ok());
  // The message may first say that no worker is connected; it then names the small one.
  ASSERT_TRUE(testing::WaitUntil([&] {
    return Job("s-0").message() ==
           "waiting: needs 1 CUDA slot with 80 GB; connected workers have 1 CUDA slot with 40 GB";
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

}  // namespace
}  // namespace ablate::coordinator
