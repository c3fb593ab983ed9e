// SIGTERM to a worker, as Kubernetes sends when it deletes a pod or drains a node, and Slurm at
// the end of an allocation: the worker takes no new work, its trainer checkpoints at the step
// it reached and exits, the worker reports the job as interrupted and exits 0 well inside a
// grace period, and the job resumes on another worker from that checkpoint rather than from
// the last periodic one. Real processes, real signals, a real trainer on a tiny model.
#include <signal.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"

namespace ablate {
namespace {

constexpr int kSteps = 400;

class DrainTest : public test::ClusterTest {};

TEST_F(DrainTest, SigtermedWorkerHandsItsJobBackFromWhereItStopped) {
  absl::Status started = StartFirstWorkerWithOneJob(/*slots=*/1, kSteps);
  ASSERT_TRUE(started.ok()) << started << Logs();

  // Past a periodic checkpoint (every 20 steps) and on its way to the next.
  absl::StatusOr<v1::Job> job =
      WaitForOnlyJob([](const v1::Job& j) { return j.step() >= 25; }, absl::Minutes(2));
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  const int64_t seen_step = job->step();
  const absl::Time sent = absl::Now();
  absl::Status drained = DrainFirstWorker(absl::Seconds(20));
  ASSERT_TRUE(drained.ok()) << drained << Logs();
  RecordProperty("worker_exit_ms", absl::ToInt64Milliseconds(absl::Now() - sent));

  // The trainer saved where it stopped, not only the periodic checkpoint before it.
  const int64_t stopped_at = NewestCheckpointStep(job->spec().checkpoint_dir());
  EXPECT_GE(stopped_at, seen_step) << Logs();
  EXPECT_LT(stopped_at, kSteps);

  // Handed back: pending again, and it ends on the next worker from that checkpoint.
  job = FinishOnSecondWorker(/*slots=*/1);
  ASSERT_TRUE(job.ok()) << job.status() << Logs();
  EXPECT_EQ(job->attempts(), 2u);
  EXPECT_EQ(job->worker_id(), "second");
  EXPECT_EQ(job->step(), kSteps);
  RecordProperty("stopped_at_step", stopped_at);
}

}  // namespace
}  // namespace ablate
