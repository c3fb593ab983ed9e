// The notes a valid sweep file's expansion gives (sweep/expansion_notes.h), as
// ExpandSweepYaml places them in the file.
#include "sweep/expansion_notes.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/sweep_file.h"

namespace ablate::sweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// An override that no kept cell meets is legal and noted, at its conditions; one that meets a
// cell is not.
TEST(ExpansionNotesTest, AnIdleOverrideIsNotedAtItsConditions) {
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(R"(name: t
grid:
  optimizer: [adamw, muon]
overrides:
  - when: {optimizer: muon}
    set: {steps: 70}
  - when: {optimizer: soap}
    set: {steps: 90}
)",
                                                               "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->notes,
            std::vector<std::string>{"s.yaml:7:5: overrides[1].when: no cell that the grid and its "
                                     "constraints keep meets it, so the override changes nothing"});
}

// A setting no cell reads is accepted, and noted where the file gives it.
TEST(ExpansionNotesTest, SettingsNoCellReadsAreNoted) {
  const std::string yaml = R"(name: t
grid:
  attention: [dense]
fixed:
  decay_fraction: 0.3
  attention_args: {block_size: 32}
overrides:
  - when: {attention: dense}
    set: {attention_args.window: 128}
)";
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(yaml, "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_THAT(
      expanded->notes,
      ElementsAre("s.yaml:6:20: fixed.attention_args.block_size: no cell's attention takes "
                  "arguments (dense takes none), so it changes nothing",
                  "s.yaml:5:3: fixed.decay_fraction: read only by lr_schedule wsd, which no "
                  "cell uses, so it changes nothing",
                  HasSubstr("overrides[0].set.attention_args.window: no cell's attention")));
  // Read by some cell: no note. The learned compression's kernel needs it set somewhere.
  expanded = ExpandSweepYaml(R"(name: t
grid:
  attention: [dense, nsa]
  lr_schedule: [cosine, wsd]
fixed: {decay_fraction: 0.3, context_length: 2048, attention_args.compression_kernel: 64}
)",
                             "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_THAT(expanded->notes,
              ElementsAre(HasSubstr("fixed.attention_args.compression_kernel: read only under "
                                    "attention_args.learned_compression")));
}

// A derived value for an optimizer that no cell has changes nothing: noted at the value, as an
// override that no cell meets is.
TEST(ExpansionNotesTest, ADerivedValueForAnOptimizerNoCellUsesIsNoted) {
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(R"(name: t
grid:
  optimizer: [adamw]
derived:
  learning_rate: {adamw: 3e-3, soap: 1e-3}
)",
                                                               "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->notes,
            std::vector<std::string>{"s.yaml:5:32: derived.learning_rate.soap: no cell uses "
                                     "optimizer soap, so it changes nothing"});
}

// A grid value whose every cell a constraint drops runs nowhere: legal (a rule kept for later),
// but most often a require naming a value the grid lacks. Noted at the value.
TEST(ExpansionNotesTest, AGridValueTheConstraintsDropEverywhereIsNoted) {
  const std::string yaml = R"(name: t
grid:
  optimizer: [adamw, muon]
  context_length: [1K, 2K]
constraints:
  - when: {optimizer: muon}
    require: {context_length: [4K]}
)";
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(yaml, "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->expansion.jobs.size(), 2u);
  EXPECT_EQ(expanded->notes,
            std::vector<std::string>{"s.yaml:3:22: grid.optimizer: 'muon' is in no cell that the "
                                     "constraints keep (constraints[0] drops every cell with it), "
                                     "so it runs nowhere"});
  // A constraint that drops some of a value's cells leaves the value running: no note.
  std::string some = yaml;
  some.replace(some.find("[4K]"), 4, "[2K]");
  expanded = ExpandSweepYaml(some, "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->expansion.jobs.size(), 3u);
  EXPECT_TRUE(expanded->notes.empty());
  // Where a baseline picks the cells, the plan's excluded list names the dropped one: no note.
  expanded = ExpandSweepYaml(yaml + "baseline: {optimizer: adamw, context_length: 1K}\n", "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->expansion.dropped.size(), 1u);
  EXPECT_TRUE(expanded->notes.empty());
}

TEST(ExpansionNotesTest, ASampleLargerThanTheKeptCellsIsNoted) {
  const std::string yaml = R"(name: t
grid:
  optimizer: [adamw, muon]
  seed: [1, 2]
sample:
  count: 5
  seed: 1
)";
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(yaml, "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->expansion.jobs.size(), 4u);
  EXPECT_EQ(expanded->notes,
            std::vector<std::string>{"s.yaml:6:3: sample.count: 5 is more than the 4 cells the "
                                     "grid and its constraints keep; all of them run"});
  std::string four = yaml;
  four.replace(four.find("count: 5"), 8, "count: 4");
  expanded = ExpandSweepYaml(four, "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_TRUE(expanded->notes.empty());
}

TEST(ExpansionNotesTest, AMicroBatchAboveTheBatchIsNotedAtItsFirstCell) {
  const std::string yaml = R"(name: t
fixed:
  micro_batch_size: 8
grid:
  batch_size: [4, 8, 2]
)";
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(yaml, "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->notes,
            std::vector<std::string>{"s.yaml:3:21: cell batch_size=4: micro_batch_size: 8 is more "
                                     "than batch_size (4), as in 1 more job; the whole share "
                                     "runs at once"});
  std::string fits = yaml;
  fits.replace(fits.find("[4, 8, 2]"), 9, "[8, 16]");
  expanded = ExpandSweepYaml(fits, "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_TRUE(expanded->notes.empty());
}

}  // namespace
}  // namespace ablate::sweep
