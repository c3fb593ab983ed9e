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
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/cluster_test.h"
#include "tests/support/coordinator.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"

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
    auto coordinator = test::TestCoordinator::Start(bin_dir_, dir_, {}, 0, {"tune-w"});
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    auto worker = StartNamedWorker("tune-w", 2);
    ASSERT_TRUE(worker.ok()) << worker.status();
    workers_.push_back(*std::move(worker));
  }

  // The output of one `ablate` run.
  std::string Ablate(const std::vector<std::string>& args, int* exit_code) {
    std::vector<std::string> argv = {bin_dir_ + "/ablate", "--coordinator",
                                     coordinator_->grpc_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto process = test::Subprocess::Start(argv);
    if (!process.ok()) return "";
    absl::StatusOr<int> code = (*process)->WaitFor(absl::Seconds(30));
    *exit_code = code.ok() ? *code : -1;
    return (*process)->Stdout() + (*process)->Stderr();
  }

  // The only sweep's jobs once its final job ended (or the last ones seen at the deadline).
  std::vector<v1::Job> WaitForFinal() {
    auto stub = v1::SweepService::NewStub(
        test::TokenChannel(coordinator_->grpc_address(), test::kViewerToken));
    const absl::Time deadline = absl::Now() + absl::Seconds(240);
    std::vector<v1::Job> jobs;
    while (absl::Now() < deadline) {
      absl::StatusOr<v1::Sweep> sweep = OnlySweep();
      if (!sweep.ok()) break;
      grpc::ClientContext context;
      v1::ListJobsRequest request;
      request.set_sweep_id(sweep->id());
      v1::ListJobsResponse response;
      if (stub->ListJobs(&context, request, &response).ok()) {
        jobs.assign(response.jobs().begin(), response.jobs().end());
        const bool ended = std::any_of(jobs.begin(), jobs.end(), [](const v1::Job& job) {
          return job.spec().has_tuned() && job.state() >= v1::JOB_STATE_SUCCEEDED;
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

  int code = -1;
  const std::string plan = Ablate({"plan", file}, &code);
  ASSERT_EQ(code, 0) << plan;
  EXPECT_THAT(plan, HasSubstr("tuning: 4 points per cell by successive halving (eta 2); 6 trial "
                              "jobs\n  learning_rate: 1e-7 1e-6 3e-3 1e-5\n"));
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

  const std::string results = Ablate({"results", "tune"}, &code);
  ASSERT_EQ(code, 0) << results;
  EXPECT_THAT(results, HasSubstr("TRIALS"));
  EXPECT_THAT(results, HasSubstr("TUNED LR"));
  EXPECT_THAT(results, testing::ContainsRegex("tiny +6 +0.003 +0.1 +1/1"));  // default decay
}

}  // namespace
}  // namespace ablate
