// Per-cell tuning through the real coordinator, worker, trainer and CLI processes: a tiny CPU
// sweep searches four learning rates by successive halving (eta 2), the coordinator promotes the
// best half of the first rung by the eval losses the trials reported, and trains the best of
// the second rung for the cell's own steps; `ablate plan` counts the trials beforehand and
// `ablate results` reports the chosen values.
#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "ablate/v1/sweep_service.grpc.pb.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/job_state.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"

namespace ablate {
namespace {

using ::testing::HasSubstr;

// Three learning rates too small to move the tiny model in a few steps and one that clearly
// does: 3e-3 must win every rung. 4 trials of 4 steps, the best 2 for 8, the chosen one for 16.
constexpr char kSweep[] = R"(name: tune
grid:
  model: [tiny]
tuning:
  parameters: {learning_rate: [1e-7, 1e-6, 3e-3, 1e-5]}
  min_steps: 4
  reduction_factor: 2
fixed:
  steps: 16
  batch_size: 4
  context_length: 32
  warmup_steps: 1
  log_every: 2
  eval_batches: 2
  checkpoint_every: 0
  cpu_threads: 1
max_attempts: 1
)";

class TuningSweepTest : public test::ClusterTest {
 protected:
  void SetUp() override {
    test::ClusterTest::SetUp();
    if (HasFatalFailure()) return;
    StartCoordinatorAndWorker("tune-w", 2);
  }

  // The only sweep's jobs once its final job ended (or the last ones seen at the deadline).
  std::vector<v1::Job> WaitForFinal() {
    const absl::Time deadline = absl::Now() + absl::Seconds(240);
    std::vector<v1::Job> jobs;
    while (absl::Now() < deadline) {
      absl::StatusOr<std::vector<v1::Job>> read = OnlySweepJobs();
      if (read.ok()) {
        jobs = *std::move(read);
        const bool ended = std::any_of(jobs.begin(), jobs.end(), [](const v1::Job& job) {
          return job.spec().has_tuned() && JobStateHasEnded(job.state());
        });
        if (ended) return jobs;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    ADD_FAILURE() << "the tuned job never ended (" << jobs.size() << " jobs)\n" << Logs();
    return jobs;
  }
};

TEST_F(TuningSweepTest, PromotesTheBestTrialsAndTrainsTheChosenPointForTheCellsSteps) {
  const std::string file = dir_ + "/tune.yaml";
  std::ofstream(file) << kSweep << "checkpoint_root: " << dir_ << "/checkpoints\n";

  const test::Cli plan_run = Ablate({"plan", file});
  ASSERT_EQ(plan_run.exit_code, 0) << plan_run.err;
  const std::string& plan = plan_run.out;
  EXPECT_THAT(plan, HasSubstr("7 jobs at most: 1 final + 6 trials (rung 0: 4 x 4 steps, rung 1: "
                              "2 x 8 steps)"));
  EXPECT_THAT(plan, HasSubstr("tuning: 4 points per cell by successive halving (eta 2)\n"
                              "  learning_rate: 1e-7 1e-6 3e-3 1e-5\n"));
  EXPECT_THAT(plan, HasSubstr("4x4 2x8"));  // rungs: 4 trials of 4 steps, 2 of 8
  ASSERT_TRUE(Submit(file).ok());

  const std::vector<v1::Job> jobs = WaitForFinal();
  ASSERT_EQ(jobs.size(), 7u) << Logs();              // 4 + 2 trials, 1 final job
  std::map<uint32_t, const v1::Job*> first, second;  // point -> trial
  const v1::Job* final = nullptr;
  for (const v1::Job& job : jobs) {
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.spec().job_id() << " " << job.message();
    ASSERT_TRUE(job.has_final_eval_loss()) << job.spec().job_id();
    if (job.spec().has_tuned()) {
      final = &job;
    } else {
      ASSERT_TRUE(job.spec().has_trial());
      (job.spec().trial().rung() == 0 ? first : second)[job.spec().trial().point()] = &job;
    }
  }
  ASSERT_EQ(first.size(), 4u);
  ASSERT_EQ(second.size(), 2u);
  ASSERT_NE(final, nullptr);

  // Trials are paired: the cell's seed, the first rung's budget.
  for (const auto& [point, trial] : first) {
    EXPECT_EQ(trial->spec().config().steps(), 4u);
    EXPECT_EQ(trial->spec().config().seed(), first.at(0)->spec().config().seed());
    EXPECT_EQ(trial->step(), 4);
  }
  // The second rung holds exactly the two best of the first, by their recorded eval losses.
  std::vector<std::pair<double, uint32_t>> ranked;
  ranked.reserve(first.size());
  for (const auto& [point, trial] : first) ranked.emplace_back(trial->final_eval_loss(), point);
  std::sort(ranked.begin(), ranked.end());
  EXPECT_TRUE(second.contains(ranked[0].second) && second.contains(ranked[1].second))
      << "promoted points " << second.begin()->first << ", " << second.rbegin()->first;
  EXPECT_EQ(ranked[0].second, 2u);  // 3e-3 is clearly best
  for (const auto& [point, trial] : second) {
    EXPECT_EQ(trial->spec().config().steps(), 8u);
    EXPECT_EQ(trial->step(), 8);
  }

  // The final job trains the best of the second rung for the cell's 16 steps, and records it.
  const v1::Job* best = second.at(2);
  for (const auto& [point, trial] : second) {
    EXPECT_LE(best->final_eval_loss(), trial->final_eval_loss());
  }
  EXPECT_EQ(final->spec().tuned().point(), 2u);
  EXPECT_EQ(final->spec().tuned().rung(), 1u);
  EXPECT_EQ(final->spec().tuned().trial_job_id(), best->spec().job_id());
  EXPECT_DOUBLE_EQ(final->spec().tuned().trial_eval_loss(), best->final_eval_loss());
  EXPECT_DOUBLE_EQ(final->spec().tuned().learning_rate(), 3e-3);
  EXPECT_DOUBLE_EQ(final->spec().config().learning_rate(), 3e-3);
  EXPECT_EQ(final->spec().config().steps(), 16u);
  EXPECT_EQ(final->step(), 16);
  EXPECT_EQ(final->spec().config().seed(), best->spec().config().seed());

  const test::Cli results_run = Ablate({"results", "tune"});
  ASSERT_EQ(results_run.exit_code, 0) << results_run.err;
  const std::string& results = results_run.out;
  EXPECT_THAT(results, HasSubstr("TRIALS"));
  EXPECT_THAT(results, HasSubstr("TUNED LR"));
  // No TUNED WD column: the search leaves weight decay at the cell's own.
  // 0.003 is the largest learning rate searched: marked, as the best may lie beyond.
  EXPECT_THAT(results, testing::ContainsRegex("tiny +6 +0.003 ↑ +1/1"));
  EXPECT_THAT(results, HasSubstr("↑ ↓: the tuning chose the largest (smallest) value"));
  // Any series the trainers report, read job by job; a name none reports is said so, with
  // the names they do.
  const test::Cli speed = Ablate({"results", "tune", "--metric", "train/tokens_per_sec"});
  ASSERT_EQ(speed.exit_code, 0) << speed.err;
  EXPECT_THAT(speed.out, testing::ContainsRegex("tiny +6 +0.003 ↑ +1/1 +[0-9]+\\.[0-9]{4} "));
  const test::Cli typo = Ablate({"results", "tune", "--metric", "train/tokens_per_s"});
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_THAT(typo.err, HasSubstr(" logged train/tokens_per_s (did you mean "
                                  "train/tokens_per_sec?); they log "));
  EXPECT_THAT(typo.err, HasSubstr("train/loss"));

  // Widening the search trains the new point alone: the rung it joins ranks it last, so the
  // second rung and the final job are those already trained, kept rather than run again.
  std::map<std::string, uint32_t> attempts;  // job id -> attempts before the update
  for (const v1::Job& job : jobs) attempts[job.spec().job_id()] = job.attempts();
  std::ofstream(file, std::ios::trunc) << absl::StrReplaceAll(kSweep, {{"1e-5]", "1e-5, 1e-9]"}})
                                       << "checkpoint_root: " << dir_ << "/checkpoints\n";
  const test::Cli update = Ablate({"submit", "--update", file});
  ASSERT_EQ(update.exit_code, 0) << update.err;
  const test::Cli watch = Ablate({"watch", "tune"});
  EXPECT_EQ(watch.exit_code, 0) << watch.out << watch.err;
  absl::StatusOr<std::vector<v1::Job>> after = OnlySweepJobs();
  ASSERT_TRUE(after.ok()) << after.status();
  std::vector<std::string> added;
  for (const v1::Job& job : *after) {
    EXPECT_FALSE(job.dropped()) << job.spec().job_id();
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.spec().job_id() << Logs();
    auto before = attempts.find(job.spec().job_id());
    if (before == attempts.end()) {
      added.push_back(job.spec().job_id());
      EXPECT_EQ(job.spec().trial().rung(), 0u) << job.spec().job_id();
      EXPECT_DOUBLE_EQ(job.spec().config().learning_rate(), 1e-9);
    } else {
      EXPECT_EQ(job.attempts(), before->second) << job.spec().job_id() << " ran again";
    }
  }
  EXPECT_EQ(added.size(), 1u) << Logs();
}

}  // namespace
}  // namespace ablate
