// The `tuning:` section of a sweep file: its mistakes named by key and position.
#include "sweep/tuning_file.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/grid.h"
#include "sweep/sweep_file.h"

namespace ablate::sweep {
namespace {

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
  absl::StatusOr<v1::SweepSpec> spec =
      ParseSweepYaml("name: t\ngrid:\n  optimizer: [adamw]\nfixed: {steps: 40}\ntuning:\n"
                     "  parameters: {learning_rate: [1e-3, 1e-2]}\n  min_steps: 50\n",
                     "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_FALSE(expansion.ok());
  EXPECT_EQ(expansion.status().message(),
            "cell optimizer=adamw: tuning.min_steps: 50 steps is not below the cell's 40");
}

}  // namespace
}  // namespace ablate::sweep
