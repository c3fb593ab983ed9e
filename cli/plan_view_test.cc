// The job count's one wording, shared by `ablate validate`, `plan` and `submit`, and the plan
// of the tuned example as `ablate plan` prints it.
#include "cli/plan_view.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "sweep/plan.h"
#include "sweep/sweep_file.h"

namespace ablate::cli {
namespace {

v1::JobCountPlan Count(const char* text) {
  v1::JobCountPlan count;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &count)) << text;
  return count;
}

TEST(PlanViewTest, TheJobCountInWords) {
  EXPECT_EQ(JobCountText(Count("cells: 54 seeds: 1 finals: 54 total: 54 submitted: 54 "
                               "excluded: 18")),
            "54 jobs; 18 cells excluded by constraints");
  EXPECT_EQ(JobCountText(Count("cells: 1 seeds: 1 finals: 1 total: 1 submitted: 1")),
            "1 job; 0 cells excluded by constraints");
  EXPECT_EQ(JobCountText(Count("cells: 3 seeds: 3 finals: 9 total: 9 submitted: 9 excluded: 1")),
            "9 jobs (3 cells x 3 seeds); 1 cell excluded by constraints");
  EXPECT_EQ(JobCountText(Count(R"pb(cells: 3
                                    seeds: 3
                                    finals: 9
                                    rungs { steps: 25 trials: 30 }
                                    rungs { steps: 75 trials: 9 }
                                    trials: 39
                                    total: 48
                                    submitted: 30)pb")),
            "48 jobs at most: 9 final (3 cells x 3 seeds) + 39 trials (rung 0: 30 x 25 steps, "
            "rung 1: 9 x 75 steps); 0 cells excluded by constraints; rung 0's 30 trials run "
            "first");
}

// The tuned example's plan: the count in the header, the search, and LR "tuned" per final job.
TEST(PlanViewTest, TheTunedExample) {
  absl::StatusOr<sweep::ExpandedSweepFile> file =
      sweep::ExpandSweepFile("examples/optimizer-tuning.yaml");
  ASSERT_TRUE(file.ok()) << file.status();
  const std::string text = PlanText(sweep::PlanOf(file->spec, file->expansion));
  EXPECT_THAT(text, ::testing::ContainsRegex(
                        "^sweep optimizer-tuning-[0-9a-f]+ \\(baseline\\): 48 jobs at most: 9 "
                        "final \\(3 cells x 3 seeds\\) \\+ 39 trials \\(rung 0: 30 x 25 steps, "
                        "rung 1: 9 x 75 steps\\); 0 cells excluded by constraints; rung 0's 30 "
                        "trials run first\n"
                        "tuning: 10 points per cell by successive halving \\(eta 3\\)\n"));
  EXPECT_THAT(text, ::testing::ContainsRegex("\\(tuned\\) +adamw +1 .* tuned +0.0085\n"));
  // Why there is no third rung (it would hold 10 / 9 = 1 trial): the rule is shown.
  EXPECT_THAT(text, ::testing::HasSubstr("  rungs: from min_steps, each eta times the steps of "
                                         "the one before, while that is\n  below the cell's steps "
                                         "and keeps 2 or more trials"));
}

// A plan with jobs that offload checkpoints to pinned host memory shows HOST: Qwen3-0.6B's 1M
// cells pin 20 layers x 4 bytes x 1,024 x 2^20 tokens, 80 GiB a rank. Without such jobs the
// column is left out.
TEST(PlanViewTest, HostMemoryWhereJobsOffloadCheckpoints) {
  absl::StatusOr<sweep::ExpandedSweepFile> file =
      sweep::ExpandSweepFile("examples/research-nsa.yaml");
  ASSERT_TRUE(file.ok()) << file.status();
  const std::string text = PlanText(sweep::PlanOf(file->spec, file->expansion));
  EXPECT_THAT(text, ::testing::ContainsRegex("MEMORY +HOST +GPUS"));
  EXPECT_THAT(text,
              ::testing::ContainsRegex(
                  "qwen3-0\\.6b +nsa +adamw +1M +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ GiB +80\\.0 GiB +8 "));
  EXPECT_THAT(text, ::testing::ContainsRegex(
                        "qwen3-0\\.6b +nsa +adamw +512K +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ GiB +- +8 "));

  absl::StatusOr<sweep::ExpandedSweepFile> tuned =
      sweep::ExpandSweepFile("examples/optimizer-tuning.yaml");
  ASSERT_TRUE(tuned.ok()) << tuned.status();
  EXPECT_THAT(PlanText(sweep::PlanOf(tuned->spec, tuned->expansion)),
              ::testing::Not(::testing::HasSubstr("HOST")));
}

}  // namespace
}  // namespace ablate::cli
