#include "cli/results.h"

#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/stats.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/grid.h"
#include "sweep/sweep_file.h"
#include "sweep/tuning.h"

namespace ablate::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(StatsTest, StudentQuantilesMatchTheTables) {
  EXPECT_DOUBLE_EQ(StudentT975(1), 12.706);
  EXPECT_DOUBLE_EQ(StudentT975(2), 4.303);
  EXPECT_DOUBLE_EQ(StudentT975(30), 2.042);
  EXPECT_NEAR(StudentT975(40), 2.021, 1e-3);   // tables: 2.021
  EXPECT_NEAR(StudentT975(120), 1.980, 1e-3);  // tables: 1.980
  EXPECT_NEAR(StudentT975(100000), 1.960, 1e-3);
}

TEST(StatsTest, EstimateOfThreeValues) {
  // mean 3.1; deviations -0.1, 0.1, 0: std sqrt(0.02 / 2) = 0.1; t(0.975, 2) = 4.303;
  // half width 4.303 * 0.1 / sqrt(3) = 0.248434.
  const v1::Estimate e = Estimate({3.0, 3.2, 3.1});
  EXPECT_EQ(e.n(), 3u);
  EXPECT_NEAR(e.mean(), 3.1, 1e-12);
  EXPECT_NEAR(e.std(), 0.1, 1e-12);
  EXPECT_NEAR(e.low(), 2.851566179, 1e-9);
  EXPECT_NEAR(e.high(), 3.348433821, 1e-9);
  const v1::Estimate one = Estimate({2.5});
  EXPECT_EQ(one.mean(), 2.5);
  EXPECT_FALSE(one.has_std());
  EXPECT_FALSE(one.has_low());
}

v1::Sweep StudySweep() {
  v1::Sweep sweep;
  sweep.set_id("study-00");
  v1::Dimension& optimizer = *sweep.mutable_spec()->add_grid();
  optimizer.set_name("optimizer");
  optimizer.add_values("adamw");
  optimizer.add_values("muon");
  (*sweep.mutable_spec()->mutable_baseline())["optimizer"] = "adamw";
  sweep.mutable_spec()->set_repeats(3);
  return sweep;
}

v1::Job Run(const std::string& optimizer, uint64_t seed, double loss,
            v1::JobState state = v1::JOB_STATE_SUCCEEDED) {
  v1::Job job;
  job.set_state(state);
  v1::CellValue* value = job.mutable_spec()->add_cell();
  value->set_dimension("optimizer");
  value->set_value(optimizer);
  value = job.mutable_spec()->add_cell();
  value->set_dimension("seed");
  value->set_value(absl::StrCat(seed));
  job.mutable_spec()->mutable_config()->set_seed(seed);
  if (state == v1::JOB_STATE_SUCCEEDED) job.set_final_eval_loss(loss);
  job.set_last_loss(loss + 1);
  return job;
}

v1::SweepResults StudyResults(const std::string& metric = "eval/loss") {
  absl::StatusOr<ResultsBuilder> builder = ResultsBuilder::Create(StudySweep(), metric);
  EXPECT_TRUE(builder.ok()) << builder.status();
  // Out of order, as pages may come; a failed run of muon seed 4 counts as a job only.
  for (const v1::Job& job :
       {Run("muon", 3, 3.05), Run("adamw", 1, 3.0), Run("adamw", 2, 3.2), Run("adamw", 3, 3.1),
        Run("muon", 1, 2.9), Run("muon", 2, 3.0), Run("muon", 4, 0, v1::JOB_STATE_FAILED)}) {
    builder->Add(job);
  }
  return builder->Finish();
}

TEST(ResultsTest, MeansIntervalsAndPairedDifferencesByHand) {
  const v1::SweepResults results = StudyResults();
  ASSERT_EQ(results.cells_size(), 2);
  // In the grid's order, though the first job came from muon.
  const v1::CellResult& adamw = results.cells(0);
  const v1::CellResult& muon = results.cells(1);
  EXPECT_TRUE(adamw.baseline());
  EXPECT_FALSE(adamw.has_difference());
  EXPECT_EQ(adamw.jobs(), 3u);
  EXPECT_NEAR(adamw.metric().mean(), 3.1, 1e-12);
  EXPECT_NEAR(adamw.metric().low(), 2.851566179, 1e-9);

  EXPECT_EQ(muon.jobs(), 4u);
  EXPECT_EQ(muon.succeeded(), 3u);
  EXPECT_THAT(muon.seeds(), ::testing::ElementsAre(1, 2, 3));
  // mean (2.9 + 3.0 + 3.05) / 3 = 2.983333; std 0.0763763.
  EXPECT_NEAR(muon.metric().mean(), 2.983333333, 1e-9);
  EXPECT_NEAR(muon.metric().std(), 0.0763762616, 1e-9);
  // Paired by seed: -0.1, -0.2, -0.05; mean -0.116667, std 0.0763763 (the same spread as
  // muon's alone: adamw's seeds shift it), interval -0.116667 -+ 4.303 * 0.0763763 / sqrt(3).
  EXPECT_NEAR(muon.difference().mean(), -0.116666667, 1e-9);
  EXPECT_NEAR(muon.difference().low(), -0.306411132, 1e-9);
  EXPECT_NEAR(muon.difference().high(), 0.073077798, 1e-9);
  EXPECT_EQ(muon.cell_size(), 1);  // the seed is not a grid dimension

  const v1::SweepResults train = StudyResults("train/loss");
  EXPECT_NEAR(train.cells(0).metric().mean(), 4.1, 1e-12);
  EXPECT_FALSE(ResultsBuilder::Create(StudySweep(), "accuracy").ok());
  EXPECT_FALSE(ResultsBuilder::Create(StudySweep(), "eval/").ok());
  // Another series: its values come from the caller, one per job.
  absl::StatusOr<ResultsBuilder> speed =
      ResultsBuilder::Create(StudySweep(), "train/tokens_per_sec");
  ASSERT_TRUE(speed.ok()) << speed.status();
  EXPECT_FALSE(speed->ReadsJobs());
  speed->Add(cli::Run("adamw", 1, 3.0), 1000.0);
  speed->Add(cli::Run("adamw", 2, 3.0), 3000.0);
  speed->Add(cli::Run("muon", 1, 3.0), std::nullopt);
  const v1::SweepResults speeds = speed->Finish();
  EXPECT_EQ(speeds.cells(0).metric().mean(), 2000.0);
  EXPECT_FALSE(speeds.cells(1).has_metric());
}

TEST(ResultsTest, TableAndCsv) {
  const v1::SweepResults results = StudyResults();
  const std::string text = ResultsText(StudySweep(), results);
  EXPECT_THAT(text, HasSubstr("optimizer  RUNS  eval/loss            95% CI     STD  "
                              "VS BASELINE    95% CI (PAIRED)\n"));
  EXPECT_THAT(text, HasSubstr("muon        3/4     2.9833  [2.7936, 3.1731]  0.0764      "
                              "-0.1167  [-0.3064, 0.0731]\n"));
  EXPECT_THAT(text, HasSubstr("adamw       3/3     3.1000  [2.8516, 3.3484]  0.1000     "
                              "baseline\n"));
  const std::string csv = ResultsCsv(StudySweep(), results);
  EXPECT_THAT(csv,
              ::testing::StartsWith("optimizer,jobs,succeeded,n,mean,std,ci95_low,ci95_high,diff,"
                                    "diff_ci95_low,diff_ci95_high\nadamw,3,3,3,3.1,"
                                    "0.10000000000000009,"));
  EXPECT_THAT(csv, HasSubstr("\nmuon,4,3,3,2.98333"));
  // The baseline has no difference from itself.
  EXPECT_THAT(csv, ::testing::ContainsRegex("\nadamw,[^\n]*,,,\n"));
}

// Runs from an older trainer are marked against the newest result's version; jobs an update
// of the sweep dropped are no cell's runs.
// A baseline without a value leaves every difference blank: the table says why.
TEST(ResultsTest, ABaselineWithoutAValueIsNamed) {
  absl::StatusOr<ResultsBuilder> builder = ResultsBuilder::Create(StudySweep(), "eval/loss");
  ASSERT_TRUE(builder.ok()) << builder.status();
  // Qualified: inside a test, Run alone names the test's own.
  builder->Add(cli::Run("adamw", 1, 0, v1::JOB_STATE_FAILED));
  builder->Add(cli::Run("muon", 1, 2.9));
  EXPECT_THAT(ResultsText(StudySweep(), builder->Finish()),
              ::testing::EndsWith("the baseline cell (optimizer=adamw) has no eval/loss (0 of 1 "
                                  "jobs succeeded), so no cell has a difference from it; `ablate "
                                  "status study-00` shows its jobs\n"));
  // Without a baseline in the spec, there are no columns of differences.
  v1::Sweep plain = StudySweep();
  plain.mutable_spec()->clear_baseline();
  absl::StatusOr<ResultsBuilder> without = ResultsBuilder::Create(plain, "eval/loss");
  ASSERT_TRUE(without.ok()) << without.status();
  without->Add(cli::Run("muon", 1, 2.9));
  const std::string text = ResultsText(plain, without->Finish());
  EXPECT_THAT(text, HasSubstr("STD\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("BASELINE")));
}

TEST(ResultsTest, MarksCellsOfOtherCodeVersionsAndLeavesOutDroppedJobs) {
  ResultsBuilder builder = *ResultsBuilder::Create(StudySweep(), "eval/loss");
  int64_t second = 100;
  auto add = [&](v1::Job job, const std::string& version) {
    job.mutable_provenance()->set_code_version(version);
    job.mutable_updated_at()->set_seconds(second++);
    builder.Add(job);
  };
  add(cli::Run("adamw", 1, 3.0), "0.1.0+new");
  add(cli::Run("muon", 1, 2.9), "0.1.0+old");
  add(cli::Run("muon", 2, 3.0), "0.1.0+new");
  add(cli::Run("adamw", 2, 3.2), "0.1.0+new");  // updated last: the newest result
  v1::Job dropped = cli::Run("adamw", 3, 9.0);
  dropped.set_dropped(true);
  add(dropped, "0.1.0+dropped");
  const v1::SweepResults results = builder.Finish();
  EXPECT_EQ(results.code_version(), "0.1.0+new");
  ASSERT_EQ(results.cells_size(), 2);
  EXPECT_TRUE(results.cells(0).other_code_versions().empty());  // adamw
  EXPECT_EQ(results.cells(0).jobs(), 2u);
  EXPECT_NEAR(results.cells(0).metric().mean(), 3.1, 1e-12);
  EXPECT_THAT(results.cells(1).other_code_versions(), ::testing::ElementsAre("0.1.0+old"));

  const std::string text = ResultsText(StudySweep(), results);
  EXPECT_THAT(text, HasSubstr("\nadamw       2/2 "));
  EXPECT_THAT(text, HasSubstr("\nmuon       2/2* "));
  EXPECT_THAT(
      text, ::testing::EndsWith("\n* some runs come from code 0.1.0+old, not 0.1.0+new (the newest "
                                "result's)\n"));
  EXPECT_THAT(ResultsText(StudySweep(), StudyResults()), ::testing::Not(HasSubstr("*")));
}

v1::Sweep TwoByTwoByTwo() {
  v1::Sweep sweep;
  sweep.set_id("grid-00");
  for (const auto& [name, a, b] :
       {std::tuple{"model", "tiny", "mini"}, std::tuple{"optimizer", "adamw", "soap"},
        std::tuple{"attention", "dense", "nsa"}}) {
    v1::Dimension& d = *sweep.mutable_spec()->add_grid();
    d.set_name(name);
    d.add_values(a);
    d.add_values(b);
  }
  return sweep;
}

v1::SweepResults GridResults(const v1::Sweep& sweep) {
  ResultsBuilder builder = *ResultsBuilder::Create(sweep, "eval/loss");
  double loss = 1.0;
  for (const char* model : {"tiny", "mini"}) {
    for (const char* optimizer : {"adamw", "soap"}) {
      for (const char* attention : {"dense", "nsa"}) {
        v1::Job job;
        job.set_state(v1::JOB_STATE_SUCCEEDED);
        for (const auto& [d, v] : {std::pair{"model", model}, std::pair{"optimizer", optimizer},
                                   std::pair{"attention", attention}}) {
          v1::CellValue* value = job.mutable_spec()->add_cell();
          value->set_dimension(d);
          value->set_value(v);
        }
        job.set_final_eval_loss(loss);
        loss += 0.5;  // 1.0 ... 4.5
        builder.Add(job);
      }
    }
  }
  return builder.Finish();
}

TEST(CompareTest, OnePanelPerRemainingValue) {
  const v1::Sweep sweep = TwoByTwoByTwo();
  absl::StatusOr<std::string> text =
      CompareText(sweep, GridResults(sweep), "optimizer", "attention", /*color=*/false);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "model=tiny\n"
            "optimizer \\ attention    dense      nsa\n"
            "adamw                   1.0000   1.5000\n"
            "soap                    2.0000   2.5000\n"
            "\n"
            "model=mini\n"
            "optimizer \\ attention    dense      nsa\n"
            "adamw                   3.0000   3.5000\n"
            "soap                    4.0000   4.5000\n");
}

// A mean over fewer runs than the cell's seeds is marked, as results' RUNS column marks it.
TEST(CompareTest, AMeanOfSomeSeedsIsMarked) {
  const v1::Sweep sweep = TwoByTwoByTwo();
  v1::SweepResults results = GridResults(sweep);
  ASSERT_EQ(results.cells(0).metric().n(), 1u);
  results.mutable_cells(0)->set_jobs(2);  // tiny, adamw, dense: one of two seeds ended
  absl::StatusOr<std::string> text =
      CompareText(sweep, results, "optimizer", "attention", /*color=*/false);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, HasSubstr("\nadamw                  1.0000*   1.5000\n"));
  EXPECT_THAT(*text, ::testing::EndsWith("\n* a mean over fewer runs than the cell's seeds "
                                         "(`ablate results` shows how many)\n"));
  EXPECT_THAT(*CompareText(sweep, GridResults(sweep), "optimizer", "attention", false),
              ::testing::Not(HasSubstr("*")));
}

// Left out, --rows and --cols are the grid's first two dimensions (model x optimizer here, a
// panel per attention); on a grid of one dimension the metric is the one column.
TEST(CompareTest, FlagsLeftOutTakeTheGridsDimensionsInOrder) {
  const v1::Sweep sweep = TwoByTwoByTwo();
  absl::StatusOr<std::string> text = CompareText(sweep, GridResults(sweep), "", "", false);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, ::testing::StartsWith("attention=dense\nmodel \\ optimizer"));
  v1::Sweep one = sweep;
  one.mutable_spec()->mutable_grid()->DeleteSubrange(0, 1);  // optimizer x attention
  one.mutable_spec()->mutable_grid()->DeleteSubrange(1, 1);  // optimizer
  v1::SweepResults by_optimizer;
  by_optimizer.set_metric("eval/loss");
  for (const char* optimizer : {"adamw", "soap"}) {
    v1::CellResult& cell = *by_optimizer.add_cells();
    v1::CellValue& value = *cell.add_cell();
    value.set_dimension("optimizer");
    value.set_value(optimizer);
    cell.mutable_metric()->set_mean(optimizer[0] == 'a' ? 1.0 : 2.0);
  }
  text = CompareText(one, by_optimizer, "", "", false);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "optimizer  eval/loss\n"
            "adamw         1.0000\n"
            "soap          2.0000\n");
}

TEST(CompareTest, ColorsRunFromGreenAtTheLowestToRedAtTheHighest) {
  const v1::Sweep sweep = TwoByTwoByTwo();
  absl::StatusOr<std::string> text =
      CompareText(sweep, GridResults(sweep), "optimizer", "attention", /*color=*/true);
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, HasSubstr("\x1b[38;5;46m 1.0000\x1b[0m"));   // lowest: green
  EXPECT_THAT(*text, HasSubstr("\x1b[38;5;196m 4.5000\x1b[0m"));  // highest: red
  // Columns line up as without color: the codes wrap the padded text.
  EXPECT_THAT(*text, HasSubstr("adamw                  \x1b[38;5;"));
}

// A run that diverged may report a NaN or infinite loss; the coordinator stores it as given.
// Every view of the results prints it as such, without a crash or undefined behavior (the
// sanitizer build runs this test).
TEST(ResultsTest, NanAndInfiniteLossesArePrinted) {
  absl::StatusOr<ResultsBuilder> builder = ResultsBuilder::Create(StudySweep(), "eval/loss");
  ASSERT_TRUE(builder.ok());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const v1::Job& job :
       {cli::Run("adamw", 1, 3.0), cli::Run("adamw", 2, inf), cli::Run("muon", 1, nan),
        cli::Run("muon", 2, 3.0), cli::Run("muon", 3, -inf)}) {
    builder->Add(job);
  }
  const v1::SweepResults results = builder->Finish();
  const std::string text = ResultsText(StudySweep(), results);
  EXPECT_THAT(text, HasSubstr("nan"));
  EXPECT_THAT(text, HasSubstr("inf"));
  EXPECT_THAT(ResultsCsv(StudySweep(), results), HasSubstr("nan"));

  const v1::Sweep sweep = TwoByTwoByTwo();
  v1::SweepResults grid = GridResults(sweep);
  grid.mutable_cells(0)->mutable_metric()->set_mean(nan);
  grid.mutable_cells(1)->mutable_metric()->set_mean(inf);
  grid.mutable_cells(2)->mutable_metric()->set_mean(-inf);
  absl::StatusOr<std::string> heatmap = CompareText(sweep, grid, "optimizer", "attention", true);
  ASSERT_TRUE(heatmap.ok()) << heatmap.status();
  EXPECT_THAT(*heatmap, HasSubstr("nan"));
}

TEST(CompareTest, FlagsMustNameTwoGridDimensions) {
  const v1::Sweep sweep = TwoByTwoByTwo();
  const v1::SweepResults results = GridResults(sweep);
  EXPECT_EQ(CompareText(sweep, results, "optimizr", "attention", false).status().message(),
            "--rows: 'optimizr' is not a grid dimension (grid: model, optimizer, attention)");
  EXPECT_EQ(CompareText(sweep, results, "model", "model", false).status().message(),
            "--cols: the same dimension as --rows");
}

// A sweep tuning 3 learning rates in each cell of `optimizers` (a YAML list): one rung of 3
// trials of 10 steps (the next, 30 steps, is not below the cells' 20).
absl::StatusOr<v1::SweepSpec> TunedSpec(const std::string& optimizers) {
  return sweep::ParseSweepYaml(
      absl::StrCat("name: tuned\ngrid:\n  optimizer: ", optimizers,
                   "\ntuning:\n  parameters: {learning_rate: [1e-3, 2e-3, 4e-3]}\n"
                   "  min_steps: 10\nfixed: {model: tiny, steps: 20, context_length: 32, "
                   "batch_size: 4, warmup_steps: 2}\n"),
      "s.yaml");
}

// A tuned cell whose every trial failed says so, with the count, instead of "tuning"; a
// cell whose tuning is under way still reads "tuning", and one that chose shows its values.
TEST(ResultsTest, ATuningWhoseEveryTrialFailedSaysSo) {
  absl::StatusOr<v1::SweepSpec> spec = TunedSpec("[adamw, muon, soap]");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<sweep::Expansion> expansion = sweep::ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 9u);  // one rung of 3 trials per cell (30 steps >= 20)
  std::vector<v1::Job> jobs;
  for (const v1::JobSpec& trial : expansion->jobs) {
    v1::Job& job = jobs.emplace_back();
    *job.mutable_spec() = trial;
    job.set_state(v1::JOB_STATE_FAILED);  // adamw's: all three
  }
  jobs[3].set_state(v1::JOB_STATE_RUNNING);    // muon: still tuning,
  jobs[4].set_state(v1::JOB_STATE_CANCELLED);  // and a cancelled trial is not a failed one
  for (int i = 6; i < 9; ++i) {                // soap: chose
    jobs[i].set_state(v1::JOB_STATE_SUCCEEDED);
    jobs[i].set_final_eval_loss(3.0 - i * 0.1);
  }
  jobs[8].set_state(v1::JOB_STATE_FAILED);  // (a cancelled one would stop soap's tuning)
  const sweep::TuningStep step = sweep::NextTuningJobs(*spec, jobs);
  ASSERT_EQ(step.add.size(), 1u);  // soap's final job, on its best trial (i = 7)
  v1::Job& final = jobs.emplace_back();
  *final.mutable_spec() = step.add[0];

  v1::Sweep sweep;
  sweep.set_id("tuned-00");
  *sweep.mutable_spec() = *spec;
  absl::StatusOr<ResultsBuilder> builder = ResultsBuilder::Create(sweep, "eval/loss");
  ASSERT_TRUE(builder.ok()) << builder.status();
  for (const v1::Job& job : jobs) builder->Add(job);
  const v1::SweepResults results = builder->Finish();
  ASSERT_EQ(results.cells_size(), 3);
  EXPECT_TRUE(results.cells(0).tuning_failed());
  EXPECT_EQ(results.cells(0).failed_trials(), 3u);
  EXPECT_FALSE(results.cells(1).tuning_failed());
  EXPECT_EQ(results.cells(1).failed_trials(), 1u);
  EXPECT_FALSE(results.cells(2).tuning_failed());
  EXPECT_EQ(results.cells(2).failed_trials(), 1u);
  EXPECT_TRUE(results.cells(2).has_tuned());

  const std::string text = ResultsText(sweep, results);
  EXPECT_THAT(text,
              ::testing::ContainsRegex("adamw +3 \\(3 failed\\) +failed: 3 of 3 trials +0/0 "));
  EXPECT_THAT(text, ::testing::ContainsRegex("muon +3 \\(1 failed\\) +tuning +0/0 "));
  EXPECT_THAT(text, ::testing::ContainsRegex("soap +3 \\(1 failed\\) +0.002 +0/1 "));
  EXPECT_THAT(text, Not(HasSubstr("TUNED WD")));  // the search leaves weight decay alone
  const std::string csv = ResultsCsv(sweep, results);
  EXPECT_THAT(csv, HasSubstr("\nadamw,3,3,true,,,"));
  // The chosen trial, its rung and its eval loss, each number as short as reads back exactly.
  EXPECT_THAT(csv, HasSubstr(absl::StrCat("\nsoap,3,1,false,0.002,0.1,", jobs[7].spec().job_id(),
                                          ",0,2.3,1,0,")));
}

// A choice at the edge of its search is marked: the best value may lie beyond the range.
TEST(ResultsTest, AChoiceAtTheEdgeOfItsSearchIsMarked) {
  absl::StatusOr<v1::SweepSpec> spec = TunedSpec("[adamw, muon]");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<sweep::Expansion> expansion = sweep::ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 6u);
  std::vector<v1::Job> jobs;
  // adamw's trials (lr 1e-3, 2e-3, 4e-3) best at the largest, muon's at the middle.
  for (const double loss : {3.0, 2.9, 2.8, 3.0, 2.7, 2.8}) {
    v1::Job& job = jobs.emplace_back();
    *job.mutable_spec() = expansion->jobs[jobs.size() - 1];
    job.set_state(v1::JOB_STATE_SUCCEEDED);
    job.set_final_eval_loss(loss);
  }
  for (v1::JobSpec& final : sweep::NextTuningJobs(*spec, jobs).add) {
    *jobs.emplace_back().mutable_spec() = std::move(final);
  }
  v1::Sweep sweep;
  sweep.set_id("tuned-00");
  *sweep.mutable_spec() = *spec;
  absl::StatusOr<ResultsBuilder> builder = ResultsBuilder::Create(sweep, "eval/loss");
  ASSERT_TRUE(builder.ok()) << builder.status();
  for (const v1::Job& job : jobs) builder->Add(job);
  const std::string text = ResultsText(sweep, builder->Finish());
  EXPECT_THAT(text, ::testing::ContainsRegex("adamw +3 +0.004 ↑ +0/1 "));
  EXPECT_THAT(text, ::testing::ContainsRegex("muon +3 +0.002 +0/1 "));
  EXPECT_THAT(text, HasSubstr("↑ ↓: the tuning chose the largest (smallest) value it searched"));
}

// A cell whose tuning a cancelled trial holds back says so, not "failed: 0 of 3 trials".
TEST(ResultsTest, ATuningACancelledTrialHoldsBackSaysHowToGoOn) {
  absl::StatusOr<v1::SweepSpec> spec = TunedSpec("[adamw]");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<sweep::Expansion> expansion = sweep::ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  v1::Sweep sweep;
  sweep.set_id("tuned-00");
  *sweep.mutable_spec() = *spec;
  absl::StatusOr<ResultsBuilder> builder = ResultsBuilder::Create(sweep, "eval/loss");
  ASSERT_TRUE(builder.ok()) << builder.status();
  for (size_t i = 0; i < expansion->jobs.size(); ++i) {
    v1::Job job;
    *job.mutable_spec() = expansion->jobs[i];
    job.set_state(i == 0 ? v1::JOB_STATE_CANCELLED : v1::JOB_STATE_SUCCEEDED);
    if (i > 0) job.set_final_eval_loss(3.0);
    builder->Add(job);
  }
  const v1::SweepResults results = builder->Finish();
  ASSERT_EQ(results.cells_size(), 1);
  EXPECT_TRUE(results.cells(0).tuning_failed());
  EXPECT_EQ(results.cells(0).failed_trials(), 0u);
  EXPECT_THAT(ResultsText(sweep, results),
              ::testing::ContainsRegex("adamw +3 +cancelled: retry --cancelled +0/0 "));
}

}  // namespace
}  // namespace ablate::cli
