// The shapes that pick a sweep's cells (baseline, explicit cells, a seeded sample), repeats
// with paired seeds, and the derived settings, through ExpandSweep.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/grid.h"
#include "sweep/sweep_file.h"

namespace ablate::sweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string CellOf(const v1::JobSpec& job) {
  std::string out;
  for (const v1::CellValue& value : job.cell()) {
    absl::StrAppend(&out, out.empty() ? "" : " ", value.dimension(), "=", value.value());
  }
  return out;
}

std::vector<std::string> CellsOf(const Expansion& expansion) {
  std::vector<std::string> out;
  for (const v1::JobSpec& job : expansion.jobs) out.push_back(CellOf(job));
  return out;
}

absl::StatusOr<Expansion> ExpandYaml(const std::string& yaml) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(yaml, "s.yaml");
  if (!spec.ok()) return spec.status();
  return ExpandSweep(*spec);
}

// The one line a bad file gives.
std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<Expansion> expansion = ExpandYaml(yaml);
  return expansion.ok() ? "" : std::string(expansion.status().message());
}

TEST(ShapeTest, OneFactorAtATimeRunsTheBaselineThenEachSingleChange) {
  absl::StatusOr<Expansion> expansion = ExpandYaml(R"(
name: ofat
grid:
  model: [tiny, mini]
  optimizer: [adamw, muon, soap]
  context_length: [64, 128]
baseline: {model: mini, optimizer: muon, context_length: 128}
derived:
  learning_rate: {adamw: 3e-3, muon: 2e-2, soap: 1e-3}
)");
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  // 1 + (2-1) + (3-1) + (2-1) = 5 of the 12 cells, the baseline first, then in grid order.
  EXPECT_THAT(CellsOf(*expansion), ElementsAre("model=mini optimizer=muon context_length=128",
                                               "model=tiny optimizer=muon context_length=128",
                                               "model=mini optimizer=adamw context_length=128",
                                               "model=mini optimizer=soap context_length=128",
                                               "model=mini optimizer=muon context_length=64"));
  EXPECT_DOUBLE_EQ(expansion->jobs[0].config().learning_rate(), 2e-2);
  EXPECT_DOUBLE_EQ(expansion->jobs[2].config().learning_rate(), 3e-3);
  EXPECT_DOUBLE_EQ(expansion->jobs[3].config().learning_rate(), 1e-3);
  EXPECT_TRUE(expansion->dropped.empty());
}

TEST(ShapeTest, OneFactorReportsAnExcludedChangeAndNeverAltersIt) {
  absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile("examples/shapes/one-factor.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  EXPECT_THAT(CellsOf(*expansion),
              ElementsAre("model=tiny attention=nsa optimizer=adamw context_length=128",
                          "model=mini attention=nsa optimizer=adamw context_length=128",
                          "model=tiny attention=dense optimizer=adamw context_length=128",
                          "model=tiny attention=nsa optimizer=muon context_length=128",
                          "model=tiny attention=nsa optimizer=soap context_length=128",
                          "model=tiny attention=nsa optimizer=adamw context_length=256"));
  ASSERT_EQ(expansion->dropped.size(), 1u);
  EXPECT_EQ(ExcludedLine(expansion->dropped[0]),
            "model=tiny attention=nsa optimizer=adamw context_length=64: 64 tokens are NSA's 4 "
            "selected blocks of 16, nothing left to choose");
  EXPECT_EQ(expansion->dropped[0].constraint(), 0);
}

TEST(ShapeTest, BaselineProblemsNameTheField) {
  const std::string grid = R"(
name: b
grid:
  attention: [dense, nsa]
  context_length: [128K, 512K]
constraints:
  - when: {context_length: 512K}
    require: {attention: nsa}
)";
  EXPECT_EQ(ErrorOf(grid + "baseline: {attention: sparse, context_length: 128K}\n"),
            "s.yaml:9:23: baseline.attention: unknown attention 'sparse' (known: dense, nsa)");
  EXPECT_EQ(ErrorOf(grid + "baseline: {attention: dense, context_length: 64K}\n"),
            "s.yaml:9:46: baseline.context_length: '64K' is not a value of "
            "grid.context_length (128K, 512K)");
  EXPECT_EQ(ErrorOf(grid + "baseline: {attention: dense, optimizer: adamw}\n"),
            "s.yaml:9:30: baseline.optimizer: not a grid dimension (grid: attention, "
            "context_length)");
  EXPECT_EQ(ErrorOf(grid + "baseline: {attention: dense}\n"),
            "s.yaml:9:1: baseline: names no value of grid dimension context_length");
  EXPECT_EQ(ErrorOf(grid + "baseline: {attention: dense, context_length: 512K}\n"),
            "baseline: attention=dense context_length=512K is excluded by constraints[0]");
  EXPECT_THAT(ErrorOf(grid + "baseline: {attention: nsa, context_length: 512K}\n"
                             "sample: {count: 2, seed: 1}\n"),
              HasSubstr("baseline: a sweep takes one of baseline, cells and sample"));
}

TEST(ShapeTest, ExplicitCellsRunAsListed) {
  absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile("examples/shapes/cells.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  EXPECT_THAT(CellsOf(*expansion), ElementsAre("model=tiny optimizer=adamw context_length=128",
                                               "model=tiny optimizer=soap context_length=128",
                                               "model=mini optimizer=adamw context_length=64"));
  EXPECT_THAT(ErrorOf(R"(
name: c
grid: {model: [tiny, mini]}
cells:
  - {model: tiny}
  - {model: tiny}
)"),
              HasSubstr("cells[1]: the same cell as cells[0]"));
}

TEST(ShapeTest, ASampleIsSeededDeterministicAndAmongAllowedCells) {
  const std::string yaml = R"(
name: s
grid:
  attention: [dense, nsa]
  context_length: [1K, 2K, 512K, 1M]
  learning_rate: [1e-3, 2e-3, 3e-3]
constraints:
  - when: {context_length: [512K, 1M]}
    require: {attention: nsa}
sample: {count: 5, seed: SEED}
)";
  auto with_seed = [&](int seed) {
    std::string text = yaml;
    text.replace(text.find("SEED"), 4, absl::StrCat(seed));
    return ExpandYaml(text);
  };
  absl::StatusOr<Expansion> first = with_seed(7);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->jobs.size(), 5u);
  EXPECT_EQ(first->dropped.size(), 6u);  // dense at 512K and 1M, 3 rates each
  for (const v1::JobSpec& job : first->jobs) {
    EXPECT_TRUE(job.config().attention() == "nsa" || job.config().context_length() <= 2048);
  }
  absl::StatusOr<Expansion> again = with_seed(7);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(CellsOf(*first), CellsOf(*again));
  // Another seed draws another subset (5 of 18 allowed cells: 8,568 subsets).
  absl::StatusOr<Expansion> other = with_seed(8);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(CellsOf(*first), CellsOf(*other));
  // Jobs keep grid order and are distinct.
  std::set<std::string> distinct;
  for (const std::string& cell : CellsOf(*first)) distinct.insert(cell);
  EXPECT_EQ(distinct.size(), 5u);
  // More than the allowed cells: all of them.
  std::string all = yaml;
  all.replace(all.find("count: 5"), 8, "count: 100");
  all.replace(all.find("SEED"), 4, "1");
  absl::StatusOr<Expansion> everything = ExpandYaml(all);
  ASSERT_TRUE(everything.ok());
  EXPECT_EQ(everything->jobs.size(), 18u);
}

TEST(ShapeTest, RepeatsGiveEveryCellSeedsOneToN) {
  absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile("examples/optimizer-study.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 9u);
  EXPECT_EQ(CellOf(expansion->jobs[0]), "optimizer=adamw seed=1");
  EXPECT_EQ(CellOf(expansion->jobs[2]), "optimizer=adamw seed=3");
  EXPECT_EQ(CellOf(expansion->jobs[3]), "optimizer=muon seed=1");
  for (size_t i = 0; i < expansion->jobs.size(); ++i) {
    const v1::TrainConfig& config = expansion->jobs[i].config();
    EXPECT_EQ(config.seed(), i % 3 + 1);
    EXPECT_EQ(config.data_seed(), config.seed());  // data order paired with initialisation
  }
  EXPECT_THAT(ErrorOf(R"(
name: r
grid: {optimizer: [adamw]}
repeats: 2
fixed: {data_seed: 4}
)"),
              HasSubstr("fixed.data_seed: repeats sets seed and data_seed of every cell"));
  EXPECT_THAT(ErrorOf(R"(
name: r
grid: {seed: [1, 2]}
repeats: 2
)"),
              HasSubstr("grid.seed: repeats sets seed and data_seed of every cell"));
}

TEST(ShapeTest, TokensPerStepDerivesTheBatchPerContextLength) {
  absl::StatusOr<Expansion> expansion = ExpandYaml(R"(
name: t
grid:
  context_length: [64, 128, 256]
derived:
  tokens_per_step: 2K
fixed: {micro_batch_size: 4}
)");
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 3u);
  EXPECT_EQ(expansion->jobs[0].config().batch_size(), 32u);
  EXPECT_EQ(expansion->jobs[1].config().batch_size(), 16u);
  EXPECT_EQ(expansion->jobs[2].config().batch_size(), 8u);
}

// A derived optimizer argument names the optimizers that take it; the others take none, and
// one that takes it must have a value.
TEST(ShapeTest, ADerivedOptimizerArgumentSkipsTheOptimizersWithoutIt) {
  absl::StatusOr<Expansion> expansion = ExpandYaml(R"(
name: t
grid: {optimizer: [adamw, muon]}
derived:
  optimizer_args.beta2: {adamw: 0.99}
)");
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 2u);
  EXPECT_EQ(expansion->jobs[0].config().optimizer_args().at("beta2"), 0.99);
  EXPECT_FALSE(expansion->jobs[1].config().optimizer_args().contains("beta2"));
  EXPECT_EQ(ErrorOf(R"(
name: t
grid: {optimizer: [adamw, adamw8bit]}
derived:
  optimizer_args.beta2: {adamw: 0.99}
)"),
            "cell optimizer=adamw8bit: derived.optimizer_args.beta2: no value for optimizer "
            "adamw8bit");
}

TEST(ShapeTest, DerivedSettingProblemsNameTheField) {
  EXPECT_EQ(ErrorOf(R"(
name: t
grid: {context_length: [64, 384]}
derived: {tokens_per_step: 4096}
)"),
            "cell context_length=384: derived.tokens_per_step: 4096 tokens is not a whole number "
            "of 384-token sequences");
  EXPECT_EQ(ErrorOf(R"(
name: t
grid: {context_length: [64, 128]}
derived: {tokens_per_step: 100}
)"),
            "cell context_length=64: derived.tokens_per_step: 100 tokens is not a whole number "
            "of 64-token sequences\ncell context_length=128: derived.tokens_per_step: 100 tokens "
            "is not a whole number of 128-token sequences");
  EXPECT_EQ(ErrorOf(R"(
name: t
grid: {context_length: [64]}
derived: {tokens_per_step: 4096}
fixed: {batch_size: 8}
)"),
            "s.yaml:5:9: fixed.batch_size: derived.tokens_per_step sets it; keep one of them");
  EXPECT_EQ(ErrorOf(R"(
name: t
grid: {optimizer: [adamw, muon]}
derived:
  learning_rate: {adamw: 3e-3}
)"),
            "cell optimizer=muon: derived.learning_rate: no value for optimizer muon");
  EXPECT_EQ(ErrorOf(R"(
name: t
grid: {optimizer: [adamw]}
derived:
  learning_rate: {adamx: 3e-3}
)"),
            "s.yaml:5:19: derived.learning_rate.adamx: unknown optimizer 'adamx' (known: adamw, "
            "adamw8bit, muon, soap, shampoo, soap4bit)");
  EXPECT_EQ(ErrorOf(R"(
name: t
grid: {learning_rate: [1e-3]}
derived:
  learning_rate: {adamw: 3e-3}
)"),
            "s.yaml:5:3: derived.learning_rate: also set in grid; set it in one place");
  EXPECT_EQ(ErrorOf(R"(
name: t
grid: {optimizer: [adamw]}
throughput:
  - when: {model: tiny}
    tokens_per_second: 100
)"),
            "s.yaml:5:12: throughput[0].when.model: not a grid dimension (grid: optimizer)");
  EXPECT_EQ(ErrorOf(R"(
name: t
grid: {optimizer: [adamw]}
throughput:
  - tokens_per_second: 0
)"),
            "s.yaml:5:24: throughput[0].tokens_per_second: must be a positive number of tokens "
            "one GPU trains per second");
}

}  // namespace
}  // namespace ablate::sweep
