// Per-cell tuning: the search's points, the rungs, the trials a tuned sweep expands to, every
// promotion and choice from stored jobs, the outcomes a tuned sweep's state is read from, the
// plan's counts (worked out by hand beside each number) and what an update keeps.
#include "sweep/tuning.h"

#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/grid.h"
#include "sweep/plan.h"
#include "sweep/sweep_file.h"
#include "sweep/update.h"

namespace ablate::sweep {
namespace {

using ::testing::ElementsAre;

// Two optimizers, 2 seeds each; 4 learning rates x 2 weight decays = 8 points; rungs of 25 and
// 75 steps (8 / 3 = 2 trials) before the cells' 300.
constexpr char kTuned[] = R"(name: tuned
grid:
  optimizer: [adamw, muon]
repeats: 2
tuning:
  parameters:
    learning_rate: {log_grid: [1e-4, 3e-3], points: 4}
    weight_decay: [0.0, 0.1]
  min_steps: 25
fixed:
  model: tiny
  context_length: 32
  batch_size: 4
  steps: 300
  warmup_steps: 5
)";

v1::SweepSpec Parse(const std::string& yaml) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(yaml, "s.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : v1::SweepSpec();
}

std::vector<std::string> Values(const std::vector<v1::SearchPoint>& points, int parameter) {
  std::vector<std::string> out;
  out.reserve(points.size());
  for (const v1::SearchPoint& point : points) out.push_back(point.values(parameter).value());
  return out;
}

// The sweep's jobs as the store would hold them: PENDING, each with its spec.
std::vector<v1::Job> Stored(const std::vector<v1::JobSpec>& specs) {
  std::vector<v1::Job> out;
  for (const v1::JobSpec& spec : specs) {
    v1::Job& job = out.emplace_back();
    *job.mutable_spec() = spec;
    job.set_state(v1::JOB_STATE_PENDING);
  }
  return out;
}

// The specs of `jobs`, as an update reads them back from the store.
std::vector<v1::JobSpec> Specs(const std::vector<v1::Job>& jobs) {
  std::vector<v1::JobSpec> out;
  out.reserve(jobs.size());
  for (const v1::Job& job : jobs) out.push_back(job.spec());
  return out;
}

void Succeed(v1::Job& job, double loss) {
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  job.set_final_eval_loss(loss);
}

// Adds `step`'s jobs to `jobs`, as the coordinator stores them.
void Add(std::vector<v1::Job>& jobs, const TuningStep& step) {
  for (v1::Job& job : Stored(step.add)) jobs.push_back(std::move(job));
}

TEST(TuningTest, AGridSearchCrossesItsParametersFirstSlowest) {
  const v1::SweepSpec spec = Parse(kTuned);
  const std::vector<v1::SearchPoint> points = SearchPoints(spec.tuning());
  ASSERT_EQ(points.size(), 8u);
  // 1e-4 * 30^(i/3): 1e-4, 3.107e-4, 9.655e-4, 3e-3, at 3 significant digits.
  EXPECT_THAT(Values(points, 0), ElementsAre("0.0001", "0.0001", "0.000311", "0.000311", "0.000965",
                                             "0.000965", "0.003", "0.003"));
  EXPECT_THAT(Values(points, 1),
              ElementsAre("0.0", "0.1", "0.0", "0.1", "0.0", "0.1", "0.0", "0.1"));
}

TEST(TuningTest, ASampledSearchIsFixedByItsSeedAndStaysInItsRange) {
  v1::Tuning tuning;
  tuning.set_samples(6);
  tuning.set_seed(7);
  v1::TunedParameter& rate = *tuning.add_parameters();
  rate.set_name("learning_rate");
  rate.set_low(1e-4);
  rate.set_high(1e-2);
  const std::vector<v1::SearchPoint> points = SearchPoints(tuning);
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(Values(points, 0), Values(SearchPoints(tuning), 0));
  for (const std::string& value : Values(points, 0)) {
    EXPECT_GE(std::stod(value), 1e-4);
    EXPECT_LE(std::stod(value), 1e-2);
  }
  tuning.set_seed(8);
  EXPECT_NE(Values(points, 0), Values(SearchPoints(tuning), 0));
}

TEST(TuningTest, RungsGrowByEtaWhileBelowTheCellsStepsAndHoldingTwoTrials) {
  v1::Tuning tuning;
  tuning.set_min_steps(10);
  auto rungs = [&](size_t points, uint32_t steps) {
    std::vector<std::pair<uint32_t, uint32_t>> out;
    for (const v1::RungPlan& rung : RungsOf(tuning, points, steps)) {
      out.emplace_back(rung.trials(), rung.steps());
    }
    return out;
  };
  // 27 points: 27 x 10, 9 x 30, 3 x 90; a fourth rung would hold one trial.
  EXPECT_THAT(rungs(27, 1000),
              ElementsAre(std::pair(27u, 10u), std::pair(9u, 30u), std::pair(3u, 90u)));
  // 90 steps is not below a cell of 90.
  EXPECT_THAT(rungs(27, 90), ElementsAre(std::pair(27u, 10u), std::pair(9u, 30u)));
  // 8 points: 8 / 3 = 2 trials on the second rung; 2 / 3 = 0 on the third.
  EXPECT_THAT(rungs(8, 1000), ElementsAre(std::pair(8u, 10u), std::pair(2u, 30u)));
  tuning.set_reduction_factor(2);
  EXPECT_THAT(rungs(8, 1000),
              ElementsAre(std::pair(8u, 10u), std::pair(4u, 20u), std::pair(2u, 40u)));
  EXPECT_TRUE(rungs(8, 10).empty());
}

TEST(TuningTest, ATunedCellExpandsToItsFirstRungsTrialsOnItsFirstSeed) {
  const v1::SweepSpec spec = Parse(kTuned);
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 16u);  // 2 cells x 8 points
  for (size_t i = 0; i < 16; ++i) {
    const v1::JobSpec& job = expansion->jobs[i];
    ASSERT_TRUE(job.has_trial());
    EXPECT_EQ(job.trial().point(), i % 8);
    EXPECT_EQ(job.trial().rung(), 0u);
    EXPECT_EQ(job.trial().cell_steps(), 300u);
    EXPECT_EQ(job.config().steps(), 25u);
    EXPECT_EQ(job.config().seed(), 1u);  // the cell's first seed: trials are paired
    EXPECT_EQ(job.config().data_seed(), 1u);
    ASSERT_EQ(job.cell_size(), 1);  // the grid's values, no seed
    EXPECT_EQ(job.cell(0).value(), i < 8 ? "adamw" : "muon");
  }
  EXPECT_DOUBLE_EQ(expansion->jobs[2].config().learning_rate(), 0.000311);
  EXPECT_DOUBLE_EQ(expansion->jobs[3].config().weight_decay(), 0.1);
}

TEST(TuningTest, TheBestThirdIsPromotedAndTheBestOfTheLastRungIsChosen) {
  const v1::SweepSpec spec = Parse(kTuned);
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  std::vector<v1::Job> jobs = Stored(expansion->jobs);

  // Nothing moves while a rung runs.
  TuningStep step = NextTuningJobs(spec, jobs);
  EXPECT_TRUE(step.add.empty());
  EXPECT_FALSE(step.done);

  // adamw: point 5 best, then 2; point 0's loss is lower still but it failed, and point 1's
  // is NaN: both rank below every other. muon still runs.
  const std::vector<double> losses = {0.1, 3.0, 2.5, 4.0, 5.0, 2.0, 6.0, 7.0};
  for (int i = 0; i < 8; ++i) Succeed(jobs[i], losses[i]);
  jobs[0].set_state(v1::JOB_STATE_FAILED);
  jobs[1].set_final_eval_loss(std::nan(""));
  step = NextTuningJobs(spec, jobs);
  ASSERT_EQ(step.add.size(), 2u);
  EXPECT_EQ(step.add[0].trial().point(), 5u);
  EXPECT_EQ(step.add[1].trial().point(), 2u);
  for (const v1::JobSpec& promoted : step.add) {
    EXPECT_EQ(promoted.trial().rung(), 1u);
    EXPECT_EQ(promoted.config().steps(), 75u);
    EXPECT_EQ(promoted.index(), 16u + (&promoted - step.add.data()));
    EXPECT_THAT(promoted.job_id(), testing::StartsWith(expansion->sweep_id + "-"));
    EXPECT_NE(promoted.job_id(), jobs[promoted.trial().point()].spec().job_id());
  }
  Add(jobs, step);
  EXPECT_TRUE(NextTuningJobs(spec, jobs).add.empty());  // promoted once

  // On the second rung point 2 beats point 5: it is chosen, and each seed trains it for 300.
  Succeed(jobs[16], 1.9);  // point 5
  Succeed(jobs[17], 1.2);  // point 2
  step = NextTuningJobs(spec, jobs);
  ASSERT_EQ(step.add.size(), 2u);
  for (uint32_t seed = 1; seed <= 2; ++seed) {
    const v1::JobSpec& final = step.add[seed - 1];
    EXPECT_FALSE(final.has_trial());
    ASSERT_TRUE(final.has_tuned());
    EXPECT_EQ(final.tuned().point(), 2u);
    EXPECT_EQ(final.tuned().rung(), 1u);
    EXPECT_EQ(final.tuned().trial_job_id(), jobs[17].spec().job_id());
    EXPECT_DOUBLE_EQ(final.tuned().trial_eval_loss(), 1.2);
    EXPECT_DOUBLE_EQ(final.tuned().learning_rate(), 0.000311);
    EXPECT_DOUBLE_EQ(final.tuned().weight_decay(), 0.0);
    EXPECT_DOUBLE_EQ(final.config().learning_rate(), 0.000311);
    EXPECT_EQ(final.config().steps(), 300u);
    EXPECT_EQ(final.config().seed(), seed);
    ASSERT_EQ(final.cell_size(), 2);
    EXPECT_EQ(final.cell(1).value(), absl::StrCat(seed));
  }
  EXPECT_FALSE(step.done);  // muon has not chosen
  Add(jobs, step);
  EXPECT_TRUE(NextTuningJobs(spec, jobs).add.empty());

  // Every muon trial fails: the cell never chooses, and the sweep's tuning is done.
  for (int i = 8; i < 16; ++i) jobs[i].set_state(v1::JOB_STATE_FAILED);
  step = NextTuningJobs(spec, jobs);
  EXPECT_TRUE(step.add.empty());
  EXPECT_TRUE(step.done);
}

// `ablate cancel` on a tuning sweep cancels the trials that have not ended; the cell must not
// promote the others and train on. Once the cancelled trial is retried, tuning resumes.
TEST(TuningTest, ACancelledTrialStopsItsCellsTuningUntilItIsRetried) {
  const v1::SweepSpec spec = Parse(kTuned);
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  std::vector<v1::Job> jobs = Stored(expansion->jobs);
  for (int i = 0; i < 16; ++i) Succeed(jobs[i], 10.0 - i % 8);
  jobs[3].set_state(v1::JOB_STATE_CANCELLED);  // adamw's point 3
  TuningStep step = NextTuningJobs(spec, jobs);
  ASSERT_EQ(step.add.size(), 2u);  // muon's promotions only
  for (const v1::JobSpec& promoted : step.add) EXPECT_EQ(promoted.config().optimizer(), "muon");
  EXPECT_FALSE(step.done);
  std::vector<v1::Job> muon_done = jobs;
  Add(muon_done, step);
  for (size_t i = 16; i < muon_done.size(); ++i) Succeed(muon_done[i], 1.0);
  Add(muon_done, NextTuningJobs(spec, muon_done));  // muon's final jobs
  for (size_t i = 18; i < muon_done.size(); ++i) Succeed(muon_done[i], 1.0);
  step = NextTuningJobs(spec, muon_done);
  EXPECT_TRUE(step.add.empty());
  EXPECT_TRUE(step.done);  // nothing more will run: the sweep can end, CANCELLED
  EXPECT_THAT(TuningOutcomes(spec, muon_done),
              testing::UnorderedElementsAre(v1::JOB_STATE_CANCELLED, v1::JOB_STATE_SUCCEEDED,
                                            v1::JOB_STATE_SUCCEEDED));

  Succeed(jobs[3], 9.0);  // retried
  step = NextTuningJobs(spec, jobs);
  EXPECT_EQ(step.add.size(), 4u);  // both cells promote
}

TEST(TuningTest, APointThatFailsOnALaterRungIsNeverChosen) {
  const v1::SweepSpec spec = Parse(kTuned);
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  std::vector<v1::Job> jobs = Stored(expansion->jobs);
  for (int i = 0; i < 16; ++i) Succeed(jobs[i], 10.0 - i % 8);  // points 7 and 6 best
  Add(jobs, NextTuningJobs(spec, jobs));
  ASSERT_EQ(jobs.size(), 20u);  // 2 promotions per cell
  EXPECT_EQ(jobs[16].spec().trial().point(), 7u);
  // adamw: point 7 diverges on the second rung; point 6 is chosen.
  jobs[16].set_state(v1::JOB_STATE_FAILED);
  Succeed(jobs[17], 2.0);
  // muon: both promoted trials diverge; the best first-rung point that never failed is none
  // of them, so the cell falls back to the best of the rest of the first rung (point 5).
  jobs[18].set_state(v1::JOB_STATE_FAILED);
  jobs[19].set_state(v1::JOB_STATE_FAILED);
  const TuningStep step = NextTuningJobs(spec, jobs);
  ASSERT_EQ(step.add.size(), 4u);
  EXPECT_EQ(step.add[0].tuned().point(), 6u);
  EXPECT_EQ(step.add[2].tuned().point(), 5u);
  EXPECT_EQ(step.add[2].tuned().rung(), 0u);
  EXPECT_TRUE(step.done);
}

TEST(TuningTest, OutcomesAreTheCellsFinalJobsNotTheirTrials) {
  using ::testing::UnorderedElementsAre;
  const v1::SweepSpec spec = Parse(kTuned);
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  std::vector<v1::Job> jobs = Stored(expansion->jobs);
  EXPECT_THAT(TuningOutcomes(spec, jobs), ElementsAre(v1::JOB_STATE_PENDING));

  // Every first-rung trial ended, one failed in each cell: a barrier, not an end.
  for (int i = 0; i < 16; ++i) Succeed(jobs[i], 10.0 - i % 8);
  jobs[0].set_state(v1::JOB_STATE_FAILED);
  jobs[8].set_state(v1::JOB_STATE_FAILED);
  EXPECT_THAT(TuningOutcomes(spec, jobs), ElementsAre(v1::JOB_STATE_PENDING));
  Add(jobs, NextTuningJobs(spec, jobs));
  for (size_t i = 16; i < jobs.size(); ++i) Succeed(jobs[i], 1.0);
  EXPECT_THAT(TuningOutcomes(spec, jobs), ElementsAre(v1::JOB_STATE_PENDING));
  Add(jobs, NextTuningJobs(spec, jobs));
  ASSERT_EQ(jobs.size(), 24u);  // 2 cells x 2 seeds of final jobs

  // The final jobs decide, whatever their trials did.
  for (size_t i = 20; i < 24; ++i) Succeed(jobs[i], 1.0);
  jobs[23].set_state(v1::JOB_STATE_RUNNING);
  EXPECT_THAT(TuningOutcomes(spec, jobs),
              UnorderedElementsAre(v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_SUCCEEDED,
                                   v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_RUNNING));
  jobs[23].set_state(v1::JOB_STATE_FAILED);
  EXPECT_THAT(TuningOutcomes(spec, jobs),
              UnorderedElementsAre(v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_SUCCEEDED,
                                   v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED));

  // A cell whose every point failed has no result: FAILED, or CANCELLED when cancelled.
  std::vector<v1::Job> failed = Stored(expansion->jobs);
  for (v1::Job& job : failed) job.set_state(v1::JOB_STATE_FAILED);
  failed[8].set_state(v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(TuningOutcomes(spec, failed),
              ElementsAre(v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED));
}

// Cells of different steps have different rungs: the count sums each cell's own.
TEST(TuningTest, TheJobCountSumsEachCellsOwnRungs) {
  std::string yaml = kTuned;
  yaml += "overrides:\n  - when: {optimizer: muon}\n    set: {steps: 60}\n";
  const v1::SweepSpec spec = Parse(yaml);
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  const v1::JobCountPlan count = JobCountOf(spec, *expansion);
  // adamw (300 steps): 8 x 25, then 2 x 75; muon (60 steps): 8 x 25 only (75 is not below 60).
  ASSERT_EQ(count.rungs_size(), 2);
  EXPECT_EQ(count.rungs(0).trials(), 16u);
  EXPECT_EQ(count.rungs(1).trials(), 2u);
  EXPECT_EQ(count.trials(), 18u);
  EXPECT_EQ(count.finals(), 4u);  // 2 cells x 2 seeds
  EXPECT_EQ(count.total(), 22u);
  EXPECT_EQ(count.submitted(), 16u);
  // Without tuning every job is a final one.
  v1::SweepSpec plain = spec;
  plain.clear_tuning();
  absl::StatusOr<Expansion> untuned = ExpandSweep(plain);
  ASSERT_TRUE(untuned.ok()) << untuned.status();
  const v1::JobCountPlan jobs = JobCountOf(plain, *untuned);
  EXPECT_EQ(jobs.total(), 4u);
  EXPECT_EQ(jobs.cells(), 2u);
  EXPECT_EQ(jobs.trials(), 0u);
  EXPECT_EQ(jobs.submitted(), 4u);
}

TEST(TuningTest, AnUpdateKeepsLaterTrialsAndFinalsWhileTheSearchStands) {
  const v1::SweepSpec spec = Parse(kTuned);
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  std::vector<v1::Job> jobs = Stored(expansion->jobs);
  for (int i = 0; i < 8; ++i) Succeed(jobs[i], 10.0 - i);
  Add(jobs, NextTuningJobs(spec, jobs));
  ASSERT_EQ(jobs.size(), 18u);
  const std::vector<v1::JobSpec> stored = Specs(jobs);

  Update same = UpdateOf(expansion->sweep_id, stored, spec, *ExpandSweep(spec));
  EXPECT_TRUE(same.added.empty());
  EXPECT_TRUE(same.dropped.empty());

  // A third weight decay changes adamw's and muon's search: 4 new points each (the 8 it had
  // stand, though their indexes moved), and the promoted trials of the old search are dropped
  // with it.
  v1::SweepSpec wider = spec;
  wider.mutable_tuning()->mutable_parameters(1)->add_values("0.3");
  Update changed = UpdateOf(expansion->sweep_id, stored, wider, *ExpandSweep(wider));
  EXPECT_EQ(changed.added.size(), 8u);
  EXPECT_THAT(changed.dropped, ElementsAre(jobs[16].spec().job_id(), jobs[17].spec().job_id()));
}

// Trials stored by a release that kept an argument dense ignores in their configs (and hashed
// them so) are still the cells' first rung: an update of the same file keeps every stored job.
TEST(TuningTest, AnUpdateKeepsTrialsStoredWithArgumentsNowLeftOut) {
  const v1::SweepSpec spec = Parse(kTuned);
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  std::vector<v1::JobSpec> stored = expansion->jobs;
  for (v1::JobSpec& job : stored) {
    (*job.mutable_config()->mutable_attention_args())["window"] = 64;
    job.set_config_hash(TrialHash(job));
    job.set_job_id(absl::StrCat(expansion->sweep_id, "-", job.config_hash().substr(0, 6)));
  }
  ASSERT_NE(stored[0].job_id(), expansion->jobs[0].job_id());
  Update update = UpdateOf(expansion->sweep_id, stored, spec, *ExpandSweep(spec));
  EXPECT_TRUE(update.added.empty());
  EXPECT_TRUE(update.dropped.empty());
  EXPECT_EQ(update.reused.size(), stored.size());
}

// A search widened after the cell chose: the new point trains alone, and the later rung's
// trials and the final job the update dropped are revived once the new point ranks below them,
// rather than trained again.
TEST(TuningTest, AWiderSearchRevivesTheTrainedJobsItStillNeeds) {
  // kTuned with one cell, one seed, and 4 learning rates halved per rung: rungs of 4 x 25 and
  // 2 x 50 steps before the cell's 300.
  const std::string one_cell = absl::StrReplaceAll(
      kTuned, {{"[adamw, muon]\nrepeats: 2", "[adamw]"},
               {"{log_grid: [1e-4, 3e-3], points: 4}\n    weight_decay: [0.0, 0.1]",
                "[1e-4, 3e-4, 1e-3, 3e-3]"},
               {"min_steps: 25", "min_steps: 25\n  reduction_factor: 2"}});
  const v1::SweepSpec spec = Parse(one_cell);
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  std::vector<v1::Job> jobs = Stored(expansion->jobs);
  ASSERT_EQ(jobs.size(), 4u);
  for (int i = 0; i < 4; ++i) Succeed(jobs[i], 4.0 - i);  // 3e-3 best
  Add(jobs, NextTuningJobs(spec, jobs));
  ASSERT_EQ(jobs.size(), 6u);  // 3e-3 and 1e-3 on the second rung
  Succeed(jobs[4], 0.5);
  Succeed(jobs[5], 0.7);
  Add(jobs, NextTuningJobs(spec, jobs));
  ASSERT_EQ(jobs.size(), 7u);
  ASSERT_TRUE(jobs[6].spec().has_tuned());
  Succeed(jobs[6], 0.1);
  ASSERT_TRUE(NextTuningJobs(spec, jobs).done);

  v1::SweepSpec wider = spec;
  wider.mutable_tuning()->mutable_parameters(0)->add_values("1e-5");
  const std::vector<v1::JobSpec> stored = Specs(jobs);
  Update update = UpdateOf(expansion->sweep_id, stored, wider, *ExpandSweep(wider));
  ASSERT_EQ(update.added.size(), 1u);
  EXPECT_THAT(update.dropped, ElementsAre(jobs[4].spec().job_id(), jobs[5].spec().job_id(),
                                          jobs[6].spec().job_id()));
  for (v1::Job& job : jobs) {
    job.set_dropped(absl::c_linear_search(update.dropped, job.spec().job_id()));
  }
  for (v1::Job& job : Stored(update.added)) jobs.push_back(std::move(job));

  TuningStep step = NextTuningJobs(wider, jobs);  // the new point is pending
  EXPECT_FALSE(step.done);
  EXPECT_TRUE(step.add.empty());
  EXPECT_TRUE(step.revive.empty());
  Succeed(jobs[7], 9.0);
  const auto revive = [&](const TuningStep& next) {
    EXPECT_TRUE(next.add.empty());
    for (v1::Job& job : jobs) {
      if (absl::c_linear_search(next.revive, job.spec().job_id())) job.set_dropped(false);
    }
    return next.revive;
  };
  EXPECT_THAT(revive(NextTuningJobs(wider, jobs)),
              ElementsAre(jobs[4].spec().job_id(), jobs[5].spec().job_id()));
  EXPECT_THAT(revive(NextTuningJobs(wider, jobs)), ElementsAre(jobs[6].spec().job_id()));
  step = NextTuningJobs(wider, jobs);
  EXPECT_TRUE(step.done);
  EXPECT_TRUE(step.add.empty());
  EXPECT_TRUE(step.revive.empty());
}

}  // namespace
}  // namespace ablate::sweep
