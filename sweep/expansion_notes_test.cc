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
using ::testing::IsEmpty;

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
  expanded = ExpandSweepYaml(R"(name: t
grid:
  attention_args.learned_compression: [false, true]
fixed: {attention: nsa, context_length: 2048, attention_args.compression_kernel: 64}
)",
                             "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_THAT(expanded->notes, IsEmpty());
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
  // Where a baseline picks the cells, the plan's excluded list names the dropped one: no note
  // of it, only the baseline's own.
  expanded = ExpandSweepYaml(yaml + "baseline: {optimizer: adamw, context_length: 1K}\n", "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->expansion.dropped.size(), 1u);
  EXPECT_THAT(expanded->notes, ElementsAre(HasSubstr("baseline: one factor at a time")));
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

// A baseline runs one factor at a time: the grid's cells that change two dimensions or more
// from it do not run, which the plan says once, at the baseline, naming the first few.
TEST(ExpansionNotesTest, TheCellsABaselineLeavesOutAreNotedOnce) {
  const std::string yaml = R"(name: t
grid:
  optimizer: [adamw, muon, soap]
  context_length: [128, 256]
  seed: [1, 2]
baseline: {optimizer: adamw, context_length: 128, seed: 1}
)";
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(yaml, "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->expansion.jobs.size(), 5u);
  EXPECT_EQ(expanded->notes,
            std::vector<std::string>{
                "s.yaml:6:1: baseline: one factor at a time runs 5 of the grid's 12 cells (the "
                "baseline and each cell that changes one dimension from it); the 7 cells that "
                "change two or more do not run: optimizer=adamw context_length=256 seed=2, "
                "optimizer=muon context_length=128 seed=2, optimizer=muon context_length=256 "
                "seed=1 and 4 more"});
  // A grid of one dimension runs whole under its baseline: nothing is left out.
  expanded = ExpandSweepYaml("name: t\ngrid:\n  seed: [1, 2, 3]\nbaseline: {seed: 2}\n", "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_TRUE(expanded->notes.empty());
}

// A cell that runs as an earlier cell's job, since it differs only in arguments its attention
// ignores, is noted at its grid value.
TEST(ExpansionNotesTest, ACellThatSharesAnEarlierCellsJobIsNoted) {
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(R"(name: t
grid:
  attention: [dense, nsa]
  attention_args.window: [64, 128]
fixed: {context_length: 4096}
)",
                                                               "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_EQ(expanded->expansion.jobs.size(), 3u);
  EXPECT_THAT(expanded->notes,
              ElementsAre("s.yaml:4:31: cell attention=dense attention_args.window=128: "
                          "attention_args.window: dense takes no attention_args, so the cell runs "
                          "as cell attention=dense attention_args.window=64 does, in its jobs"));
}

// NSA cells that read every key are noted as cell problems are reported: a line per reason,
// naming a few more cells it holds for and counting the rest, not a line per cell.
TEST(ExpansionNotesTest, CellsThatReadEveryKeyAreGroupedByReason) {
  const std::string yaml = R"(name: t
grid:
  attention: [dense, nsa]
  optimizer: [adamw, muon, soap]
  context_length: [128, 256]
  seed: [1, 2, 3]
fixed:
  steps: 10
)";
  absl::StatusOr<ExpandedSweepFile> expanded = ExpandSweepYaml(yaml, "s.yaml");
  ASSERT_TRUE(expanded.ok()) << expanded.status();
  EXPECT_THAT(
      expanded->notes,
      ElementsAre("s.yaml: cell attention=nsa optimizer=adamw context_length=128 seed=1: "
                  "attention_args.window: 512 tokens hold every key of a 128-token context: NSA "
                  "computes dense attention there, and more (so do cells attention=nsa "
                  "optimizer=adamw context_length=128 seed=2, attention=nsa optimizer=adamw "
                  "context_length=128 seed=3, attention=nsa optimizer=muon context_length=128 "
                  "seed=1 and 5 more)",
                  HasSubstr("of a 256-token context: NSA computes dense attention there, and "
                            "more (so do cells attention=nsa optimizer=adamw context_length=256 "
                            "seed=2, ")));
}

}  // namespace
}  // namespace ablate::sweep
