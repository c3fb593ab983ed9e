// A worker cut off from its coordinator fences itself. The coordinator is stopped with SIGSTOP,
// as a hung coordinator, or one behind a network partition, looks to its workers: the worker
// must stop the trainer of the job it holds before the coordinator's lease on it could run out
// (once it has, the coordinator may run the job elsewhere, writing the same checkpoint folder),
// keeping the checkpoints already written. Once the coordinator runs again (SIGCONT), past the
// lease, the job is retried from its checkpoint and finished, its fenced attempt ended once, and
// the worker, never restarted, takes the next job. Real processes, real signals, a real trainer
// on a tiny model, a lease of a few seconds: well under a minute.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"
#include "worker/testing/process_state.h"

namespace ablate {
namespace {

using worker::testing::Dead;
using worker::testing::EventuallyDead;

// The coordinator's --lease-timeout-s. The worker stops its trainers by three quarters of it
// (worker/lease.h); the test asks for that within the whole lease, so a loaded machine has a
// second and a half of slack.
constexpr int kLeaseSeconds = 6;
constexpr absl::Duration kLease = absl::Seconds(kLeaseSeconds);
// The job to fence: long enough (some 12 s at the 330 steps/s of two idle cores) that it still
// trains when the trainer is fenced, at most 4.5 s after step 25, on a machine twice as fast.
constexpr int kLongSteps = 4000;
// The job the worker takes once the coordinator runs again.
constexpr int kShortSteps = 40;

class FenceTest : public test::ClusterTest {
 protected:
  // Two tiny jobs, kLongSteps and kShortSteps long, checkpointing every 20 steps.
  std::string WriteSweep() {
    std::string path = dir_ + "/fence.yaml";
    std::ofstream out(path);
    out << "name: fence\ngrid:\n  model: [tiny]\n  steps: [" << kLongSteps << ", " << kShortSteps
        << "]\nfixed:\n  batch_size: 4\n  context_length: 32\n  warmup_steps: 2\n"
        << "  learning_rate: 5e-3\n  log_every: 10\n  eval_batches: 2\n"
        << "  checkpoint_every: 20\n  cpu_threads: 1\n"
        << "checkpoint_root: " << dir_ << "/checkpoints\n";
    return path;
  }

  // The first job of the only sweep that `done` holds for, polled for up to `timeout`.
  absl::StatusOr<v1::Job> WaitForJob(const std::function<bool(const v1::Job&)>& done,
                                     absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      absl::StatusOr<std::vector<v1::Job>> jobs = OnlySweepJobs();
      if (jobs.ok()) {
        for (const v1::Job& job : *jobs) {
          if (done(job)) return job;
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return absl::DeadlineExceededError("no job got there");
  }

  absl::StatusOr<v1::GetJobResponse> GetJob(const std::string& job_id) {
    auto stub = v1::SweepService::NewStub(
        test::TokenChannel(coordinator_->grpc_address(), test::kViewerToken));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::GetJobRequest request;
    request.set_job_id(job_id);
    v1::GetJobResponse response;
    grpc::Status status = stub->GetJob(&context, request, &response);
    if (!status.ok()) return absl::UnavailableError(status.error_message());
    return response;
  }

  // The pid the worker recorded for `attempt_id`'s trainer (worker/trainer_pids.h).
  std::optional<pid_t> TrainerPid(uint64_t attempt_id) {
    std::ifstream file(absl::StrCat(dir_, "/w/trainer-pids/attempt-", attempt_id, ".pid"));
    pid_t pid = 0;
    if (!(file >> pid)) return std::nullopt;
    return pid;
  }

  // The step `attempt_id`'s trainer said it resumed from, in the coordinator's log; -1 if none.
  int64_t ResumedFrom(uint64_t attempt_id) {
    const std::string log = coordinator_->process().Stderr();
    const std::string started = absl::StrCat("trainer started job_id=");
    const std::string attempt = absl::StrCat(" attempt_id=", attempt_id, " ");
    for (size_t at = log.find(started); at != std::string::npos; at = log.find(started, at + 1)) {
      const std::string line = log.substr(at, log.find('\n', at) - at);
      const size_t from = line.find("resumed_from_step=");
      int64_t step = -1;
      if (absl::StrContains(line, attempt) && from != std::string::npos &&
          absl::SimpleAtoi(line.substr(from + sizeof("resumed_from_step=") - 1), &step)) {
        return step;
      }
    }
    return -1;
  }
};

TEST_F(FenceTest, ACutOffWorkerStopsItsTrainerBeforeItsLeaseRunsOutAndGoesOn) {
  auto coordinator = test::TestCoordinator::Start(
      bin_dir_, dir_, {"--lease-timeout-s", absl::StrCat(kLeaseSeconds)}, 0, {"w"});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = *std::move(coordinator);
  auto worker = StartNamedWorker("w", /*slots=*/1);
  ASSERT_TRUE(worker.ok()) << worker.status();
  workers_.push_back(*std::move(worker));
  ASSERT_TRUE(Submit(WriteSweep()).ok()) << Logs();

  // The long job running past step 25: the checkpoint of step 20 is written.
  absl::StatusOr<v1::Job> job = WaitForJob(
      [](const v1::Job& j) {
        return j.spec().config().steps() == kLongSteps && j.state() == v1::JOB_STATE_RUNNING &&
               j.step() >= 25;
      },
      absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  const std::string job_id = job->spec().job_id();
  const uint64_t fenced_attempt = job->current_attempt_id();
  const std::optional<pid_t> trainer = TrainerPid(fenced_attempt);
  ASSERT_TRUE(trainer.has_value()) << Logs();
  ASSERT_FALSE(Dead(*trainer));

  coordinator_->process().Signal(SIGSTOP);
  const absl::Time stopped = absl::Now();
  const bool died = EventuallyDead(*trainer, kLease + absl::Seconds(5));
  const absl::Duration took = absl::Now() - stopped;
  const std::string worker_log = workers_.front()->Stderr();
  const int64_t checkpoint = NewestCheckpointStep(job->spec().checkpoint_dir());
  // Past the lease, as long as a coordinator that would give the job to another worker waits.
  absl::SleepFor(stopped + kLease + absl::Seconds(1) - absl::Now());
  coordinator_->process().Signal(SIGCONT);
  const absl::Time resumed = absl::Now();

  ASSERT_TRUE(died) << "the trainer outlived the lease" << Logs();
  EXPECT_LT(took, kLease) << Logs();
  RecordProperty("fenced_after_ms", absl::ToInt64Milliseconds(took));
  EXPECT_TRUE(absl::StrContains(worker_log, absl::StrCat("fencing: cut off from the coordinator")))
      << worker_log;
  EXPECT_TRUE(absl::StrContains(worker_log, absl::StrCat("jobs=", job_id))) << worker_log;
  EXPECT_GE(checkpoint, 20);

  // The worker, never restarted, finishes both jobs: the fenced one in a second attempt that
  // resumes from its checkpoint, and the other, which it had not run before.
  absl::StatusOr<std::vector<v1::Job>> jobs;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    jobs = OnlySweepJobs();
    if (jobs.ok() && jobs->size() == 2 &&
        std::all_of(jobs->begin(), jobs->end(),
                    [](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; })) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  for (const v1::Job& j : *jobs) {
    ASSERT_EQ(j.state(), v1::JOB_STATE_SUCCEEDED)
        << j.spec().job_id() << ": " << j.message() << Logs();
    EXPECT_EQ(j.worker_id(), "w");
    EXPECT_EQ(j.step(), j.spec().config().steps());
    if (j.spec().job_id() == job_id) continue;
    absl::StatusOr<v1::GetJobResponse> other = GetJob(j.spec().job_id());
    ASSERT_TRUE(other.ok()) << other.status();
    ASSERT_EQ(other->attempts_size(), 1) << Logs();
    // Started once the coordinator ran again (whole seconds, as both clocks are the host's).
    EXPECT_GE(other->attempts(0).started_at().seconds(), absl::ToUnixSeconds(resumed));
  }
  absl::StatusOr<v1::GetJobResponse> fenced = GetJob(job_id);
  ASSERT_TRUE(fenced.ok()) << fenced.status();
  // Its first attempt ended once, LOST (by the lease or by the worker's report, whichever the
  // coordinator took first); exactly one more ran.
  ASSERT_EQ(fenced->attempts_size(), 2) << Logs();
  EXPECT_EQ(fenced->attempts(0).id(), fenced_attempt);
  EXPECT_EQ(fenced->attempts(0).state(), v1::ATTEMPT_STATE_LOST);
  EXPECT_EQ(fenced->attempts(1).state(), v1::ATTEMPT_STATE_SUCCEEDED);
  EXPECT_GE(ResumedFrom(fenced->attempts(1).id()), checkpoint) << Logs();
  EXPECT_FALSE(workers_.front()->WaitFor(absl::ZeroDuration()).ok()) << "the worker exited";
}

}  // namespace
}  // namespace ablate
