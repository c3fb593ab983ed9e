// The `tuning:` section of a sweep file: its mistakes named by key and position, and searches
// relative to each cell's own learning rate, from the file to the trials and the plan.
#include "sweep/tuning_file.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/grid.h"
#include "sweep/plan.h"
#include "sweep/sweep_file.h"
#include "sweep/tuning.h"
#include "sweep/validate.h"

namespace ablate::sweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ParseError(const std::string& yaml) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(yaml, "s.yaml");
  EXPECT_FALSE(spec.ok());
  return std::string(spec.status().message());
}

// The problem ExpandSweepYaml finds in a cell of a file that parses.
std::string CellProblem(const std::string& yaml) {
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(yaml, "s.yaml");
  EXPECT_FALSE(expanded.ok());
  return std::string(expanded.status().message());
}

TEST(TuningFileTest, MistakesNameTheKeyAndPosition) {
  const std::string head = "name: t\ngrid:\n  optimizer: [adamw]\nfixed: {steps: 100}\n";
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {learning_rate: [1e-3, 1e-2]}\n"
                                "  min_steps: 10\n  method: asha\n"),
              HasSubstr("s.yaml:8:11: tuning.method: unknown method 'asha' (known: "
                        "successive_halving"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {learning_rate: [1e-3, 1e-2]}\n"
                                "  min_steps: 10\n  rungs: 3\n"),
              HasSubstr("s.yaml:8:3: tuning.rungs: unknown key"));
  EXPECT_THAT(
      ParseError(head + "tuning:\n  parameters:\n    learning_rate: {log_grid: [1e-3, "
                        "1e-2]}\n  min_steps: 10\n"),
      HasSubstr("s.yaml:7:5: tuning.parameters.learning_rate: a range needs points (at least "
                "2, for a log_grid) or tuning.samples (to draw a log_uniform)"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters:\n    weight_decay: {log_grid: [0, 0.1], "
                                "points: 3}\n  min_steps: 10\n"),
              HasSubstr("s.yaml:7:31: tuning.parameters.weight_decay: low is 0: a log "
                        "range needs 0 < low < high"));
  // No suggestion when no tuned name is near.
  EXPECT_EQ(ParseError(head + "tuning:\n  parameters: {beta2: [0.9, 0.95]}\n  min_steps: 10\n"),
            "s.yaml:6:16: tuning.parameters.beta2: only learning_rate and weight_decay are tuned");
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {optimizer: [adamw]}\n  min_steps: 10\n"),
              HasSubstr("tuning.parameters.optimizer: only learning_rate"));
  EXPECT_THAT(ParseError("name: t\ngrid:\n  learning_rate: [1e-3, 1e-2]\ntuning:\n"
                         "  parameters: {learning_rate: [1e-3, 1e-2]}\n  min_steps: 10\n"),
              HasSubstr("s.yaml:5:16: tuning.parameters.learning_rate: also a grid dimension"));
  EXPECT_THAT(
      ParseError(head + "tuning:\n  parameters: {learning_rate: [1e-3]}\n  min_steps: 10\n"),
      HasSubstr("tuning.parameters: the search needs at least two points"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {learning_rate: [1e-3, 1e-2]}\n"),
              HasSubstr("s.yaml:5:1: tuning: needs min_steps"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {learning_rate: {log_uniform: [1e-3, "
                                "1e-2], points: 4}}\n  samples: 8\n  min_steps: 10\n"),
              HasSubstr("s.yaml:6:67: tuning.parameters.learning_rate.points: with "
                        "tuning.samples a range is drawn from"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {learning_rate: [1e-3, x]}\n"
                                "  min_steps: 10\n"),
              HasSubstr("s.yaml:6:38: tuning.parameters.learning_rate.values: 'x' is not a "
                        "number"));
}

// Every tuning field is range-checked, each problem one line naming the field at its value.
TEST(TuningFileTest, OutOfRangeSettingsAreRefusedNamingTheField) {
  const std::string head = "name: t\ngrid:\n  optimizer: [adamw]\nfixed: {steps: 100}\n";
  const std::string lr = "tuning:\n  parameters: {learning_rate: [1e-3, 1e-2]}\n";
  struct Case {
    std::string tail;  // after the parameters line
    std::string error;
  };
  const std::vector<Case> cases = {
      {"  min_steps: 10\n  reduction_factor: 0\n",
       "s.yaml:8:21: tuning.reduction_factor: must be 2 to 1000 (3 when left out)"},
      {"  min_steps: 10\n  reduction_factor: 1\n", "s.yaml:8:21: tuning.reduction_factor: must be"},
      {"  min_steps: 10\n  reduction_factor: -3\n",
       "s.yaml:8:21: tuning.reduction_factor: must be"},
      {"  min_steps: 10\n  reduction_factor: 5000\n",
       "s.yaml:8:21: tuning.reduction_factor: must be"},
      {"  min_steps: 0\n", "s.yaml:7:14: tuning.min_steps: must be at least 1"},
      {"  min_steps: -25\n", "s.yaml:7:14: tuning.min_steps: must be at least 1"},
      {"  min_steps: 10\n  samples: 5000\n", "s.yaml:8:12: tuning.samples: at most 1000"},
  };
  for (const Case& c : cases) {
    const std::string error = ParseError(absl::StrCat(head, lr, c.tail));
    EXPECT_THAT(error, HasSubstr(c.error)) << c.tail;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
  const std::string steps = "  min_steps: 10\n";
  const std::vector<Case> ranges = {
      {"    learning_rate: {log_grid: [1e-2, 1e-3], points: 3}\n",
       "s.yaml:7:38: tuning.parameters.learning_rate: high is 0.001, not above low "
       "0.01: a log range needs 0 < low < high"},
      {"    learning_rate: {log_grid: [-1e-3, 1e-2], points: 3}\n",
       "s.yaml:7:32: tuning.parameters.learning_rate: low is -0.001: a log range"},
      {"    learning_rate: {log_grid: [1e-3, 2], points: 3}\n",
       "s.yaml:7:38: tuning.parameters.learning_rate: high 2 is outside (0, 1]"},
      // A range is named by its parameter, never by the other spelling of a range.
      {"    learning_rate: {log_uniform: [1e-2, 1e-3]}\n  samples: 4\n",
       "s.yaml:7:41: tuning.parameters.learning_rate: high is 0.001, not above low 0.01"},
      {"    learning_rate: {log_grid: [1e-3, 1e-2], points: 1}\n",
       "s.yaml:7:53: tuning.parameters.learning_rate.points: must be at least 2"},
      {"    learning_rate: {log_grid: [1e-3, 1e-2], points: -4}\n",
       "s.yaml:7:53: tuning.parameters.learning_rate.points: must be at least 2"},
      {"    learning_rate: [0.5, 2]\n",
       "s.yaml:7:26: tuning.parameters.learning_rate.values: '2' is outside (0, 1]"},
      {"    weight_decay: [0.1, -0.1]\n",
       "s.yaml:7:25: tuning.parameters.weight_decay.values: '-0.1' must not be negative"},
      {"    learning_rate: {values: [0.5, 0], relative: true}\n",
       "s.yaml:7:35: tuning.parameters.learning_rate.values: '0' is a multiple of the cell's own "
       "learning_rate and must be above 0"},
  };
  for (const Case& c : ranges) {
    const std::string error =
        ParseError(absl::StrCat(head, "tuning:\n  parameters:\n", c.tail, steps));
    EXPECT_THAT(error, HasSubstr(c.error)) << c.tail;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

// Two draws equal at 3 significant digits are named as the plan writes them, with the fixes.
TEST(TuningFileTest, ARepeatedDrawNamesItsValuesAndTheWaysOut) {
  EXPECT_THAT(ParseError("name: t\ngrid:\n  optimizer: [adamw]\nfixed: {steps: 100}\ntuning:\n"
                         "  parameters: {learning_rate: {log_uniform: [1e-3, 1.001e-3]}}\n"
                         "  samples: 4\n  min_steps: 10\n"),
              HasSubstr("s.yaml:7:12: tuning.samples: draws learning_rate=0.001 twice (a drawn "
                        "value keeps 3 significant digits); widen the range, draw fewer samples "
                        "or try another tuning.seed"));
}

// `samples: 0` and `values: []` say what is wrong with that field, not with another.
TEST(TuningFileTest, ZeroSamplesAndEmptyValuesSayWhatIsWrong) {
  const std::string head = "name: t\ngrid:\n  optimizer: [adamw]\nfixed: {steps: 100}\n";
  EXPECT_EQ(ParseError(head + "tuning:\n  parameters: {learning_rate: {log_uniform: [1e-3, "
                              "1e-2]}}\n  samples: 0\n  min_steps: 10\n"),
            "s.yaml:7:12: tuning.samples: must be at least 1: the number of points drawn at "
            "random (leave samples out to search every combination of the parameters' values)");
  EXPECT_EQ(ParseError(head + "tuning:\n  parameters: {learning_rate: {values: []}, "
                              "weight_decay: [0, 0.1]}\n  min_steps: 10\n"),
            "s.yaml:6:40: tuning.parameters.learning_rate.values: needs at least one value (or a "
            "range instead of values)");
  EXPECT_EQ(ParseError(head + "tuning:\n  parameters: {learning_rate: []}\n  min_steps: 10\n"),
            "s.yaml:6:31: tuning.parameters.learning_rate.values: needs at least one value (or a "
            "range instead of values)");
}

// One reading lists every problem of the section, each at its own node, as the rest of the
// file does: three fields and two values here.
TEST(TuningFileTest, EveryProblemOfTheSectionIsReportedInOneRun) {
  const std::string error = ParseError(R"(name: t
grid:
  optimizer: [adamw]
fixed: {steps: 100}
tuning:
  parameters:
    learning_rte: [1e-3, 1e-2]
    weight_decay: [0.1, x, -1, 0.1]
  min_steps: 0
  reduction_factor: 0
)");
  EXPECT_EQ(error,
            "s.yaml:7:5: tuning.parameters.learning_rte: only learning_rate and weight_decay "
            "are tuned (did you mean learning_rate?)\n"
            "s.yaml:8:25: tuning.parameters.weight_decay.values: 'x' is not a number\n"
            "s.yaml:8:28: tuning.parameters.weight_decay.values: '-1' must not be negative\n"
            "s.yaml:8:32: tuning.parameters.weight_decay.values: '0.1' is listed twice\n"
            "s.yaml:9:14: tuning.min_steps: must be at least 1: the first rung's budget in "
            "optimizer steps\n"
            "s.yaml:10:21: tuning.reduction_factor: must be 2 to 1000 (3 when left out): each "
            "rung keeps the best 1/reduction_factor of its trials, for reduction_factor times "
            "the steps");
  // ValidateSweepSpec (a gRPC submission) reports the same problems by key.
  v1::SweepSpec spec;
  spec.set_name("t");
  v1::Dimension& optimizer = *spec.add_grid();
  optimizer.set_name("optimizer");
  optimizer.add_values("adamw");
  spec.mutable_tuning()->add_parameters()->set_name("learning_rte");
  spec.mutable_tuning()->set_reduction_factor(0);
  const absl::Status status = ValidateSweepSpec(spec);
  EXPECT_EQ(status.message(),
            "tuning.parameters.learning_rte: only learning_rate and weight_decay are tuned (did "
            "you mean learning_rate?)\n"
            "tuning: needs min_steps (the first rung's budget in optimizer steps)\n"
            "tuning.reduction_factor: must be 2 to 1000 (3 when left out): each rung keeps the "
            "best 1/reduction_factor of its trials, for reduction_factor times the steps");
}

// A cell's problem is placed at the node that gave the value: tuning.min_steps here.
TEST(TuningFileTest, ACellTooShortForTheFirstRungIsNamedAtItsNode) {
  EXPECT_EQ(CellProblem("name: t\ngrid:\n  optimizer: [adamw]\nfixed: {steps: 40}\ntuning:\n"
                        "  parameters: {learning_rate: [1e-3, 1e-2]}\n  min_steps: 50\n"),
            "s.yaml:7:14: cell optimizer=adamw: tuning.min_steps: 50 steps is not below the "
            "cell's 40: a trial must train fewer steps than its cell (lower min_steps, or raise "
            "the cell's steps)");
  // Other cells with a problem are named too, so one round fixes them all.
  EXPECT_THAT(CellProblem("name: t\ngrid:\n  optimizer: [adamw, muon, soap, shampoo, soap4bit]\n"
                          "fixed: {steps: 40}\ntuning:\n"
                          "  parameters: {learning_rate: [1e-3, 1e-2]}\n  min_steps: 50\n"),
              ::testing::EndsWith("raise the cell's steps) (so do all 4 other cells)"));
}

// Each optimizer searches x0.25 .. x4 around its own learning rate (derived per optimizer).
constexpr char kRelative[] = R"(name: relative
grid:
  optimizer: [adamw, muon]
derived:
  learning_rate: {adamw: 2e-3, muon: 2e-2}
tuning:
  parameters:
    learning_rate: {log_grid: [0.25, 4], points: 5, relative: true}
    weight_decay: [0.0, 0.1]
  min_steps: 10
fixed: {model: tiny, steps: 100, context_length: 32, batch_size: 4}
)";

TEST(TuningFileTest, ARelativeSearchMultipliesEachCellsOwnValue) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(kRelative, "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->tuning().parameters(0).relative());
  EXPECT_FALSE(spec->tuning().parameters(1).relative());
  const std::vector<v1::SearchPoint> points = SearchPoints(spec->tuning());
  ASSERT_EQ(points.size(), 10u);  // 5 multiples x 2 weight decays
  std::vector<std::string> multiples;
  for (size_t i = 0; i < points.size(); i += 2) multiples.push_back(points[i].values(0).value());
  EXPECT_THAT(multiples, ElementsAre("x0.25", "x0.5", "x1", "x2", "x4"));
  EXPECT_EQ(points[1].values(1).value(), "0.1");

  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 20u);
  // adamw around 2e-3, muon around 2e-2: 0.25, 0.5, 1, 2 and 4 times each.
  const double adamw[] = {5e-4, 1e-3, 2e-3, 4e-3, 8e-3};
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(expansion->jobs[i].cell(0).value(), "adamw");
    EXPECT_DOUBLE_EQ(expansion->jobs[i].config().learning_rate(), adamw[i / 2]) << i;
    EXPECT_DOUBLE_EQ(expansion->jobs[10 + i].config().learning_rate(), adamw[i / 2] * 10) << i;
    EXPECT_DOUBLE_EQ(expansion->jobs[i].config().weight_decay(), i % 2 == 0 ? 0.0 : 0.1);
  }

  // The plan shows the multiples once, and each cell's own values.
  const v1::SweepPlan plan = PlanOf(*spec, *expansion);
  EXPECT_EQ(plan.search(8).values(0).value(), "x4");
  ASSERT_EQ(plan.cells_size(), 2);
  const v1::CellTuning& muon = plan.cells(1).tuning();
  ASSERT_EQ(muon.points_size(), 10);
  EXPECT_EQ(muon.points(0).values(0).value(), "0.005");
  EXPECT_EQ(muon.points(9).values(0).value(), "0.08");
  EXPECT_EQ(muon.points(9).values(1).value(), "0.1");
  EXPECT_EQ(plan.cells(0).tuning().points(4).values(0).value(), "0.002");
}

TEST(TuningFileTest, RelativeMistakesAreNamed) {
  const std::string head = "name: t\ngrid:\n  optimizer: [adamw]\nfixed: {steps: 100}\n";
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters:\n    learning_rate: {log_grid: [0.5, 2], "
                                "points: 3, relative: maybe}\n  min_steps: 10\n"),
              HasSubstr("s.yaml:7:62: tuning.parameters.learning_rate.relative: 'maybe' is not "
                        "true or false"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters:\n    learning_rate: {log_grid: [0.5, 2], "
                                "point: 3, relative: true}\n  min_steps: 10\n"),
              HasSubstr("s.yaml:7:41: tuning.parameters.learning_rate.point: unknown key (did you "
                        "mean points?)"));
  // A relative weight decay needs the cell's own to be above 0.
  EXPECT_EQ(CellProblem("name: t\ngrid:\n  optimizer: [adamw]\nfixed: {steps: 100, weight_decay: "
                        "0}\ntuning:\n  parameters: {weight_decay: {values: [0.5, 2], relative: "
                        "true}}\n  min_steps: 10\n"),
            "s.yaml:6:16: cell optimizer=adamw: tuning.parameters.weight_decay: relative, and "
            "the cell's own weight_decay is 0: set one (fixed, derived or overrides)");
  // A relative learning rate that some cell's own value takes past 1: its trial's config is
  // invalid, named by the tuned parameter, in the cell whose own value did it.
  EXPECT_THAT(CellProblem(R"(name: t
grid:
  optimizer: [adamw, muon]
derived:
  learning_rate: {adamw: 3e-3, muon: 0.5}
fixed: {steps: 100}
tuning:
  parameters:
    learning_rate: {values: [1, 4], relative: true}
  min_steps: 10
)"),
              HasSubstr("s.yaml:9:5: cell optimizer=muon: tuning.parameters.learning_rate: point "
                        "1: learning_rate: 2 is outside (0, 1]"));
}

}  // namespace
}  // namespace ablate::sweep
