// `ablate watch` of a tuned sweep to its end, through the real coordinator, worker and CLI
// processes, with the fake trainer in place of ablate-train (worker/testdata/fake_trainer.cc:
// a job's final eval loss is its learning rate, and the environment's FAKE_TRAINER_FAIL fails
// the jobs it names). A failed trial ranks last and leaves the sweep's outcome to its cell's
// final job: the sweep completes and watch exits 0. A failed final job fails the sweep: watch
// exits 1.
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"

namespace ablate {
namespace {

// Four trials of 2 steps, the best two for 4, the chosen one for the cell's 8; no retries, so a
// failed job stays failed.
constexpr char kSweep[] = R"(name: tune
grid:
  model: [tiny]
tuning:
  parameters: {learning_rate: [1e-3, 2e-3, 3e-3, 4e-3]}
  min_steps: 2
  reduction_factor: 2
fixed:
  steps: 8
  batch_size: 4
  context_length: 32
  warmup_steps: 1
  checkpoint_every: 0
  cpu_threads: 1
max_attempts: 1
)";

class TuningWatchTest : public test::ClusterTest {
 protected:
  void TearDown() override {
    unsetenv("FAKE_TRAINER_FAIL");
    test::ClusterTest::TearDown();
  }

  // A coordinator and a worker of 4 slots running the fake trainer, which fails the jobs
  // `fail` names; kSweep submitted to them, then watched with `ablate watch` to its end.
  void SubmitAndWatch(const std::string& fail, test::Cli& watch) {
    // The worker's trainers inherit its environment, which it takes from this process.
    setenv("FAKE_TRAINER_FAIL", fail.c_str(), 1);
    ASSERT_NO_FATAL_FAILURE(
        StartCoordinatorAndWorker("tune-w", 4, {"--trainer", ABLATE_FAKE_TRAINER}));
    const std::string file = dir_ + "/tune.yaml";
    std::ofstream(file) << kSweep << "checkpoint_root: " << dir_ << "/checkpoints\n";
    absl::Status submitted = Submit(file);
    ASSERT_TRUE(submitted.ok()) << submitted;
    watch = Ablate({"watch", "tune"});
  }

  // The sweep's jobs: those that failed, and the final job (nullptr when there is none).
  struct Ended {
    std::vector<v1::Job> jobs;
    std::vector<const v1::Job*> failed;
    const v1::Job* final = nullptr;
  };
  Ended ReadJobs() {
    Ended out;
    absl::StatusOr<std::vector<v1::Job>> jobs = OnlySweepJobs();
    EXPECT_TRUE(jobs.ok()) << jobs.status();
    if (!jobs.ok()) return out;
    out.jobs = *std::move(jobs);
    for (const v1::Job& job : out.jobs) {
      if (job.state() == v1::JOB_STATE_FAILED) out.failed.push_back(&job);
      if (job.spec().has_tuned()) out.final = &job;
    }
    return out;
  }
};

TEST_F(TuningWatchTest, AFailedTrialLeavesTheSweepCompletedAndWatchExitsZero) {
  // Point 0 (1e-3) would have won; failed, it ranks last, and 2e-3 is chosen.
  test::Cli watch;
  ASSERT_NO_FATAL_FAILURE(SubmitAndWatch("point=0", watch));
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err << Logs();
  const Ended ended = ReadJobs();
  EXPECT_EQ(ended.jobs.size(), 7u);  // 4 + 2 trials, 1 final job
  ASSERT_EQ(ended.failed.size(), 1u) << Logs();
  EXPECT_EQ(ended.failed[0]->spec().trial().point(), 0u);
  EXPECT_EQ(ended.failed[0]->spec().trial().rung(), 0u);
  ASSERT_NE(ended.final, nullptr);
  EXPECT_EQ(ended.final->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_DOUBLE_EQ(ended.final->spec().config().learning_rate(), 2e-3);
  absl::StatusOr<v1::Sweep> sweep = OnlySweep();
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->state(), v1::SWEEP_STATE_COMPLETED);
}

TEST_F(TuningWatchTest, AFailedFinalJobFailsTheSweepAndWatchExitsOne) {
  test::Cli watch;
  ASSERT_NO_FATAL_FAILURE(SubmitAndWatch("final", watch));
  EXPECT_EQ(watch.exit_code, 1) << watch.out << watch.err << Logs();
  const Ended ended = ReadJobs();
  EXPECT_EQ(ended.jobs.size(), 7u);
  ASSERT_EQ(ended.failed.size(), 1u) << Logs();
  EXPECT_EQ(ended.failed[0], ended.final);
  absl::StatusOr<v1::Sweep> sweep = OnlySweep();
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->state(), v1::SWEEP_STATE_FAILED);
}

}  // namespace
}  // namespace ablate
