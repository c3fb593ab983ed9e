// The `tuning:` section of a sweep file: its mistakes named by key and position, and searches
// relative to each cell's own learning rate, from the file to the trials and the plan.
#include "sweep/tuning_file.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/grid.h"
#include "sweep/plan.h"
#include "sweep/sweep_file.h"
#include "sweep/tuning.h"

namespace ablate::sweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ParseError(const std::string& yaml) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(yaml, "s.yaml");
  EXPECT_FALSE(spec.ok());
  return std::string(spec.status().message());
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
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters:\n    learning_rate: {log_grid: [1e-3, "
                                "1e-2]}\n  min_steps: 10\n"),
              HasSubstr("s.yaml:7:5: tuning.parameters.learning_rate: a log grid needs points"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters:\n    weight_decay: {log_grid: [0, 0.1], "
                                "points: 3}\n  min_steps: 10\n"),
              HasSubstr("s.yaml:7:20: tuning.parameters.weight_decay.log_grid: a log range "
                        "needs 0 < low < high"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {beta2: [0.9, 0.95]}\n  min_steps: 10\n"),
              HasSubstr("s.yaml:6:16: tuning.parameters.beta2: only learning_rate and "
                        "weight_decay are tuned"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {optimizer: [adamw]}\n  min_steps: 10\n"),
              HasSubstr("tuning.parameters.optimizer: only learning_rate"));
  EXPECT_THAT(ParseError("name: t\ngrid:\n  learning_rate: [1e-3, 1e-2]\ntuning:\n"
                         "  parameters: {learning_rate: [1e-3, 1e-2]}\n  min_steps: 10\n"),
              HasSubstr("s.yaml:5:16: tuning.parameters.learning_rate: also a grid dimension"));
  EXPECT_THAT(
      ParseError(head + "tuning:\n  parameters: {learning_rate: [1e-3]}\n  min_steps: 10\n"),
      HasSubstr("tuning.parameters: the search needs at least two points"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {learning_rate: [1e-3, 1e-2]}\n"),
              HasSubstr("s.yaml:6:3: tuning: needs min_steps"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {learning_rate: {log_uniform: [1e-3, "
                                "1e-2], points: 4}}\n  samples: 8\n  min_steps: 10\n"),
              HasSubstr("tuning.parameters.learning_rate.points: with tuning.samples a range is "
                        "drawn from"));
  EXPECT_THAT(ParseError(head + "tuning:\n  parameters: {learning_rate: [1e-3, x]}\n"
                                "  min_steps: 10\n"),
              HasSubstr("s.yaml:6:38: tuning.parameters.learning_rate.values: 'x' is not a "
                        "number"));
}

TEST(TuningFileTest, ACellTooShortForTheFirstRungIsNamed) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(
      "name: t\ngrid:\n  optimizer: [adamw]\nfixed: {steps: 40}\ntuning:\n"
      "  parameters: {learning_rate: [1e-3, 1e-2]}\n  min_steps: 50\n",
      "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_FALSE(expansion.ok());
  EXPECT_EQ(expansion.status().message(),
            "cell optimizer=adamw: tuning.min_steps: 50 steps is not below the cell's 40");
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
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(
      "name: t\ngrid:\n  optimizer: [adamw]\nfixed: {steps: 100, weight_decay: 0}\n"
      "tuning:\n  parameters: {weight_decay: {values: [0.5, 2], relative: true}}\n"
      "  min_steps: 10\n",
      "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_FALSE(expansion.ok());
  EXPECT_EQ(expansion.status().message(),
            "cell optimizer=adamw: tuning.parameters.weight_decay is relative, and the cell's "
            "own weight_decay is 0: set one (fixed, derived or overrides)");
}

}  // namespace
}  // namespace ablate::sweep
