// SIGTERM to a worker, as Kubernetes sends when it deletes a pod or drains a node, and Slurm at
// the end of an allocation: the worker takes no new work, its trainer checkpoints at the step
// it reached and exits, the worker reports the job as interrupted and exits 0 well inside a
// grace period, and the job resumes on another worker from that checkpoint rather than from
// the last periodic one. Real processes, real signals, a real trainer on a tiny model.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"

namespace ablate {
namespace {

constexpr int kSteps = 400;

// The newest step-N folder under a job's checkpoint directory, or -1.
int64_t NewestCheckpointStep(const std::filesystem::path& dir) {
  int64_t newest = -1;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    int64_t step = 0;
    if (absl::StartsWith(name, "step-") && absl::SimpleAtoi(name.substr(5), &step)) {
      newest = std::max(newest, step);
    }
  }
  return newest;
}

class DrainTest : public test::ClusterTest {};

TEST_F(DrainTest, SigtermedWorkerHandsItsJobBackFromWhereItStopped) {
  auto coordinator = test::TestCoordinator::Start(bin_dir_, dir_, {}, 0, {"first", "second"});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = std::move(*coordinator);
  auto first = StartNamedWorker("first", 1);
  ASSERT_TRUE(first.ok()) << first.status();
  workers_.push_back(std::move(*first));
  absl::Status submitted = Submit(WriteTinySweep(/*jobs=*/1, kSteps));
  ASSERT_TRUE(submitted.ok()) << submitted;

  // Past a periodic checkpoint (every 20 steps) and on its way to the next.
  absl::StatusOr<v1::Job> job =
      WaitForOnlyJob([](const v1::Job& j) { return j.step() >= 25; }, absl::Minutes(2));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  const int64_t seen_step = job->step();
  const absl::Time sent = absl::Now();
  workers_.front()->Signal(SIGTERM);
  absl::StatusOr<int> exit = workers_.front()->WaitFor(absl::Seconds(20));
  ASSERT_TRUE(exit.ok()) << "the worker did not exit\n" << Logs();
  EXPECT_EQ(*exit, 0) << Logs();
  RecordProperty("worker_exit_ms", absl::ToInt64Milliseconds(absl::Now() - sent));

  // The trainer saved where it stopped, not only the periodic checkpoint before it.
  const int64_t stopped_at = NewestCheckpointStep(job->spec().checkpoint_dir());
  EXPECT_GE(stopped_at, seen_step) << Logs();
  EXPECT_LT(stopped_at, kSteps);

  // Handed back: pending again, and it ends on the next worker from that checkpoint.
  job = WaitForOnlyJob([](const v1::Job& j) { return j.state() == v1::JOB_STATE_PENDING; },
                       absl::Seconds(20));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  auto second = StartNamedWorker("second", 1);
  ASSERT_TRUE(second.ok()) << second.status();
  workers_.push_back(std::move(*second));
  job = WaitForOnlyJob([](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; },
                       absl::Minutes(3));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  EXPECT_EQ(job->attempts(), 2u);
  EXPECT_EQ(job->worker_id(), "second");
  EXPECT_EQ(job->step(), kSteps);
  RecordProperty("stopped_at_step", stopped_at);
}

}  // namespace
}  // namespace ablate
