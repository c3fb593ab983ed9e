// Running cells again, through the real coordinator, worker, trainer and CLI processes:
// `ablate retry SWEEP --failed` runs exactly the failed cells, each as a new attempt, and
// `ablate submit --update` runs only the cells an edited file adds or changes, reusing the
// finished ones.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/job_state.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

namespace ablate {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kSweepTimeout = absl::Seconds(240);

using test::Cli;

class RerunTest : public test::ClusterTest {
 protected:
  void SetUp() override {
    test::ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    // Datasets outside the builtin ones must lie under --data-root.
    StartCoordinatorAndWorker("rerun-w", 1, {"--data-root", dir_ + "/data"});
  }

  // A sweep "rerun" of tiny jobs, one per seed, each a few steps, tried once; `extra` adds
  // top-level keys.
  std::string WriteSweep(const std::string& seeds, const std::string& extra = "") {
    std::string path = dir_ + "/rerun.yaml";
    std::ofstream(path) << "name: rerun\ngrid:\n  model: [tiny]\n  seed: [" << seeds << "]\n"
                        << "fixed:\n  steps: 6\n  batch_size: 4\n  context_length: 32\n"
                        << "  warmup_steps: 2\n  learning_rate: 5e-3\n  log_every: 2\n"
                        << "  eval_batches: 2\n  checkpoint_every: 0\n  cpu_threads: 1\n"
                        << "max_attempts: 1\n"
                        << "checkpoint_root: " << dir_ << "/checkpoints\n"
                        << extra;
    return path;
  }

  v1::ListJobsResponse Jobs() {
    v1::ListJobsResponse out;
    absl::StatusOr<std::vector<v1::Job>> jobs = OnlySweepJobs();
    EXPECT_TRUE(jobs.ok()) << jobs.status();
    if (jobs.ok()) *out.mutable_jobs() = {jobs->begin(), jobs->end()};
    return out;
  }

  // Waits until `n` jobs of the only sweep have ended; their states by seed, "1=SUCCEEDED ...".
  std::string WaitForEnded(int n) {
    const absl::Time deadline = absl::Now() + kSweepTimeout;
    std::string states;
    while (absl::Now() < deadline) {
      v1::ListJobsResponse jobs = Jobs();
      int ended = 0;
      states.clear();
      for (const v1::Job& job : jobs.jobs()) {
        if (JobStateHasEnded(job.state())) ++ended;
        absl::StrAppend(&states, states.empty() ? "" : " ", job.spec().config().seed(), "=",
                        v1::JobState_Name(job.state()).substr(sizeof("JOB_STATE_") - 1));
      }
      if (ended == n && jobs.jobs_size() == n) return states;
      absl::SleepFor(absl::Milliseconds(200));
    }
    ADD_FAILURE() << "jobs never ended: " << states << Logs();
    return states;
  }

  const v1::Job* JobOfSeed(const v1::ListJobsResponse& jobs, uint64_t seed) {
    for (const v1::Job& job : jobs.jobs()) {
      if (job.spec().config().seed() == seed) return &job;
    }
    return nullptr;
  }
};

TEST_F(RerunTest, RetryFailedRunsExactlyTheFailedCells) {
  // Seeds 2 and 3 read a corpus that is not there yet: they fail; seed 1 reads the builtin one.
  const std::string late = dir_ + "/data/late-corpus";
  ASSERT_TRUE(std::filesystem::create_directories(dir_ + "/data"));
  ASSERT_TRUE(Submit(WriteSweep("1, 2, 3", absl::StrCat("overrides:\n  - when: {seed: [2, 3]}\n"
                                                        "    set: {dataset: ",
                                                        late, "}\n")))
                  .ok());
  EXPECT_EQ(WaitForEnded(3), "1=SUCCEEDED 2=FAILED 3=FAILED");
  const v1::ListJobsResponse before = Jobs();
  ASSERT_EQ(before.jobs_size(), 3);
  EXPECT_THAT(JobOfSeed(before, 2)->message(), HasSubstr("late-corpus"));

  // The data arrives; the failed cells, and only they, run again, by the sweep's name.
  std::filesystem::copy(std::string(ABLATE_SOURCE_DIR) + "/data/tiny-corpus", late);
  const Cli retry = Ablate({"retry", "rerun", "--failed"});
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  const std::string sweep_id = OnlySweep()->id();
  EXPECT_EQ(retry.out, absl::StrCat("requeued 2 jobs of ", sweep_id, ":\n  ",
                                    JobOfSeed(before, 2)->spec().job_id(), "\n  ",
                                    JobOfSeed(before, 3)->spec().job_id(), "\n"));
  EXPECT_EQ(WaitForEnded(3), "1=SUCCEEDED 2=SUCCEEDED 3=SUCCEEDED");

  const v1::ListJobsResponse after = Jobs();
  const v1::Job& kept = *JobOfSeed(after, 1);
  EXPECT_EQ(kept.attempts(), 1u);
  EXPECT_EQ(kept.current_attempt_id(), JobOfSeed(before, 1)->current_attempt_id());
  for (uint64_t seed : {2, 3}) {
    const v1::Job& rerun = *JobOfSeed(after, seed);
    EXPECT_EQ(rerun.attempts(), 2u) << seed;
    // The retry granted the file's budget afresh: the attempt before it is not charged.
    EXPECT_EQ(rerun.uncounted_attempts(), 1u) << seed;
    EXPECT_EQ(rerun.max_attempts(), 1u) << seed;
    EXPECT_NE(rerun.current_attempt_id(), JobOfSeed(before, seed)->current_attempt_id());
    EXPECT_TRUE(rerun.has_final_eval_loss()) << seed;
  }
  // ATTEMPTS counts against max_attempts (1 here) only what ran since the retry, which granted
  // it afresh: the attempt before it is shown apart.
  const Cli status = Ablate({"status", "rerun"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  for (uint64_t seed : {1, 2, 3}) {
    const std::string& id = JobOfSeed(after, seed)->spec().job_id();
    const size_t row = status.out.find(absl::StrCat(id, " "));
    ASSERT_NE(row, std::string::npos) << status.out;
    const std::string line = status.out.substr(row, status.out.find('\n', row) - row);
    if (seed == 1) {
      EXPECT_THAT(line, ContainsRegex("SUCCEEDED +1 ")) << status.out;
    } else {
      EXPECT_THAT(line, HasSubstr("SUCCEEDED  1 (+1 not counted)")) << status.out;
    }
  }
  // The failed attempt stays in the job's history.
  auto stub = v1::SweepService::NewStub(
      test::TokenChannel(coordinator_->grpc_address(), test::kViewerToken));
  grpc::ClientContext context;
  v1::GetJobRequest get;
  get.set_job_id(JobOfSeed(after, 2)->spec().job_id());
  v1::GetJobResponse job;
  ASSERT_TRUE(stub->GetJob(&context, get, &job).ok());
  ASSERT_EQ(job.attempts_size(), 2);
  EXPECT_EQ(job.attempts(0).state(), v1::ATTEMPT_STATE_FAILED);
  EXPECT_EQ(job.attempts(1).state(), v1::ATTEMPT_STATE_SUCCEEDED);

  // Nothing failed is left; a succeeded job named is refused, with why.
  const Cli none = Ablate({"retry", sweep_id, "--failed"});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, absl::StrCat("nothing to retry: no job of ", sweep_id,
                                   " is failed (cancelled jobs: --cancelled)\n"));
  const Cli refused = Ablate({"retry", "rerun", kept.spec().job_id()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.out, absl::StrCat("not requeued: ", kept.spec().job_id(),
                                      ": SUCCEEDED: its result stands\n"));
  const Cli usage = Ablate({"retry", "rerun"});
  EXPECT_EQ(usage.exit_code, 2);
}

// A job an update drops before it ran is cancelled, not run, and leaves the sweep completed; an
// update that has its cell again runs it.
TEST_F(RerunTest, AnUpdateCancelsThePendingJobsItDropsAndRunsThoseItTakesBack) {
  ASSERT_TRUE(Submit(WriteSweep("1, 2, 3, 4")).ok());
  // One slot: seed 4 waits behind three trainers' starts and steps.
  const Cli dropped = Ablate({"submit", "--update", WriteSweep("1, 2, 3")});
  ASSERT_EQ(dropped.exit_code, 0) << dropped.err;
  EXPECT_EQ(WaitForEnded(4), "1=SUCCEEDED 2=SUCCEEDED 3=SUCCEEDED 4=CANCELLED");
  const v1::ListJobsResponse jobs = Jobs();
  const v1::Job* fourth = JobOfSeed(jobs, 4);
  ASSERT_NE(fourth, nullptr);
  EXPECT_TRUE(fourth->dropped());
  EXPECT_EQ(fourth->attempts(), 0u);
  EXPECT_THAT(fourth->message(), HasSubstr("left out of its sweep by an update before it ran"));
  EXPECT_EQ(OnlySweep()->state(), v1::SWEEP_STATE_COMPLETED);
  // Not a cell of the sweep now: retrying its cancelled jobs leaves it be.
  const Cli retry = Ablate({"retry", "rerun", "--cancelled"});
  EXPECT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_THAT(retry.out, HasSubstr(" is cancelled that the sweep still has\n1 such job was dropped "
                                   "by an update and is left as it is; name it to run it again\n"));
  const v1::ListJobsResponse after_retry = Jobs();
  ASSERT_NE(JobOfSeed(after_retry, 4), nullptr);
  EXPECT_EQ(JobOfSeed(after_retry, 4)->state(), v1::JOB_STATE_CANCELLED);

  const Cli back = Ablate({"submit", "--update", WriteSweep("1, 2, 3, 4")});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_THAT(back.out, HasSubstr(": 4 jobs reused, 0 added, 0 no longer in the file"));
  EXPECT_EQ(WaitForEnded(4), "1=SUCCEEDED 2=SUCCEEDED 3=SUCCEEDED 4=SUCCEEDED");
  EXPECT_EQ(OnlySweep()->state(), v1::SWEEP_STATE_COMPLETED);
}

TEST_F(RerunTest, UpdateReusesFinishedCellsAndRunsOnlyNewOrChangedOnes) {
  ASSERT_TRUE(Submit(WriteSweep("1, 2, 3")).ok());
  EXPECT_EQ(WaitForEnded(3), "1=SUCCEEDED 2=SUCCEEDED 3=SUCCEEDED");
  const v1::ListJobsResponse before = Jobs();
  const std::string sweep_id = OnlySweep()->id();

  // Seed 1 dropped, seed 2 as it was, seed 3 changed (a longer run), seed 4 new.
  const std::string edited =
      WriteSweep("2, 3, 4", "overrides:\n  - when: {seed: [3]}\n    set: {steps: 8}\n");
  const Cli update = Ablate({"submit", "--update", edited});
  ASSERT_EQ(update.exit_code, 0) << update.err;
  EXPECT_THAT(update.out,
              HasSubstr(absl::StrCat("\nupdated sweep ", sweep_id,
                                     ": 1 job reused, 2 added, 2 no longer in the file "
                                     "(kept as they are; one not started is cancelled)\n")));
  // The plan above it was headed by the edited file's own id, which the update does not take.
  EXPECT_THAT(update.out, ContainsRegex("\nthe sweep keeps its id; rerun-[0-9a-f]+ above is the "
                                        "id this file alone would have\n"));
  EXPECT_THAT(update.out, Not(HasSubstr(absl::StrCat("keeps its id; ", sweep_id))));
  EXPECT_EQ(WaitForEnded(5), "1=SUCCEEDED 2=SUCCEEDED 3=SUCCEEDED 3=SUCCEEDED 4=SUCCEEDED");

  const v1::ListJobsResponse after = Jobs();
  ASSERT_EQ(after.jobs_size(), 5);
  for (int i = 0; i < 3; ++i) {  // the stored cells, untouched: one attempt each
    EXPECT_EQ(after.jobs(i).spec().job_id(), before.jobs(i).spec().job_id());
    EXPECT_EQ(after.jobs(i).current_attempt_id(), before.jobs(i).current_attempt_id());
    EXPECT_EQ(after.jobs(i).attempts(), 1u);
  }
  EXPECT_EQ(after.jobs(3).spec().config().steps(), 8u);
  EXPECT_EQ(after.jobs(3).step(), 8);
  EXPECT_EQ(after.jobs(4).spec().config().seed(), 4u);
  for (int i = 3; i < 5; ++i) {
    EXPECT_EQ(after.jobs(i).spec().sweep_id(), sweep_id);
    EXPECT_EQ(after.jobs(i).spec().index(), static_cast<uint32_t>(i));
  }
  absl::StatusOr<v1::Sweep> sweep = OnlySweep();  // still one sweep, holding the new spec
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  EXPECT_EQ(sweep->spec().grid(1).values(0), "2");
  EXPECT_EQ(sweep->state(), v1::SWEEP_STATE_COMPLETED);

  // The same file again: every cell reused, nothing to run.
  const Cli again = Ablate({"submit", "--update", edited});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out,
              HasSubstr(absl::StrCat("\nupdated sweep ", sweep_id,
                                     ": 3 jobs reused, 0 added, 2 no longer in the "
                                     "file (kept as they are; one not started is cancelled)\n")));
}

}  // namespace
}  // namespace ablate
