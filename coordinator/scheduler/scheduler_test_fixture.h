// The scheduler's tests share one fixture: a real SQLite store in a temporary directory, a fake
// clock, and fake worker links that record what the scheduler sends.
#ifndef ABLATE_COORDINATOR_SCHEDULER_SCHEDULER_TEST_FIXTURE_H_
#define ABLATE_COORDINATOR_SCHEDULER_SCHEDULER_TEST_FIXTURE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"
#include "coordinator/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ablate::coordinator::scheduler_test {

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

inline v1::WorkerInfo Worker(const std::string& id, int cpu_slots, int cuda_slots = 0) {
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

// The hello `info`, reconnecting while the worker still runs `attempt_id` of `job_id` on `slots`.
inline v1::WorkerInfo Running(v1::WorkerInfo info, const std::string& job_id, uint64_t attempt_id,
                              const std::vector<uint32_t>& slots = {}) {
  v1::RunningAttempt* running = info.add_running();
  running->set_job_id(job_id);
  running->set_attempt_id(attempt_id);
  running->mutable_slot_indices()->Add(slots.begin(), slots.end());
  return info;
}

// The hello of worker `id` with one CPU slot, reconnecting while it still runs `attempt_id` of
// job s-0.
inline v1::WorkerInfo WorkerRunning(const std::string& id, uint64_t attempt_id) {
  return Running(Worker(id, 1), "s-0", attempt_id);
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

  // A sweep `id` of jobs <id>-0, <id>-1, ... asking for `gpus[i]` GPUs, `memory[i]` bytes and
  // `host_memory[i]` pinned host bytes per rank (0 when not given) each, at `priority`; stored,
  // then queued as the API does.
  void AddSweepOf(const std::string& id, const std::vector<uint32_t>& gpus,
                  const std::vector<uint64_t>& memory, int32_t priority = 0,
                  uint32_t max_attempts = 3, const std::vector<uint64_t>& host_memory = {}) {
    std::vector<v1::JobSpec> jobs;
    for (size_t i = 0; i < gpus.size(); ++i) {
      v1::JobSpec& job = jobs.emplace_back(JobOf(id, i, priority));
      job.set_memory_bytes(i < memory.size() ? memory[i] : 0);
      job.set_host_memory_bytes(i < host_memory.size() ? host_memory[i] : 0);
      job.mutable_config()->set_gpus(gpus[i]);
    }
    QueueSweep(id, jobs, priority, max_attempts);
  }

  // Job <id>-<i> of sweep `id`, at `priority`, on one CPU slot.
  static v1::JobSpec JobOf(const std::string& id, size_t i, int32_t priority = 0) {
    v1::JobSpec job;
    job.set_job_id(absl::StrCat(id, "-", i));
    job.set_sweep_id(id);
    job.set_index(static_cast<uint32_t>(i));
    job.set_priority(priority);
    job.mutable_config()->set_learning_rate(0.001 * static_cast<double>(i + 1));
    return job;
  }

  // Stores sweep `id` of `jobs` (as JobOf makes them), then queues them as the API does.
  void QueueSweep(const std::string& id, const std::vector<v1::JobSpec>& jobs, int32_t priority = 0,
                  uint32_t max_attempts = 3) {
    v1::Sweep sweep;
    sweep.set_id(id);
    sweep.mutable_spec()->set_name(id);
    sweep.mutable_spec()->set_priority(priority);
    *sweep.mutable_created_at() = ToProto(clock_.Now());
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

}  // namespace ablate::coordinator::scheduler_test

#endif  // ABLATE_COORDINATOR_SCHEDULER_SCHEDULER_TEST_FIXTURE_H_
