// SIGTERM to a worker, as Kubernetes sends when it deletes a pod or drains a node, and Slurm at
// the end of an allocation: the worker takes no new work, its trainer checkpoints at the step
// it reached and exits, the worker reports the job as interrupted and exits 0 well inside a
// grace period, and the job resumes on another worker from that checkpoint rather than from
// the last periodic one. Real processes, real signals, a real trainer on a tiny model.
// `ablate status` shows the interrupted attempt apart from those max_attempts counts.
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
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
  DrainFirstWorkerThenFinishOnSecond(/*slots=*/1, kSteps, absl::Seconds(20));
  if (HasFatalFailure()) return;
  const test::Cli status = Ablate({"status", "tiny"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, testing::HasSubstr("SUCCEEDED  1 (+1 not counted)")) << Logs();
}

}  // namespace
}  // namespace ablate
