#include "sweep/grid.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/model_math.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/sweep_file.h"

namespace ablate::sweep {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::SweepSpec Parse(const std::string& yaml) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(yaml, "test.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.value_or(v1::SweepSpec());
}

TEST(GridTest, CrossProductFirstDimensionSlowest) {
  absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile("examples/tiny-grid.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  EXPECT_THAT(expansion->sweep_id, StartsWith("tiny-grid-"));
  EXPECT_EQ(expansion->sweep_id.size(), std::string("tiny-grid-").size() + 16);
  ASSERT_EQ(expansion->jobs.size(), 4u);
  const char* cells[] = {"model=tiny optimizer=adamw context_length=64",
                         "model=tiny optimizer=adamw context_length=128",
                         "model=mini optimizer=adamw context_length=64",
                         "model=mini optimizer=adamw context_length=128"};
  for (size_t i = 0; i < 4; ++i) {
    const v1::JobSpec& job = expansion->jobs[i];
    EXPECT_EQ(CellLabel(job), cells[i]);
    EXPECT_EQ(job.index(), i);
    EXPECT_EQ(job.sweep_id(), expansion->sweep_id);
    EXPECT_EQ(job.config_hash().size(), 16u);
    EXPECT_EQ(job.job_id(), absl::StrCat(expansion->sweep_id, "-", job.config_hash().substr(0, 6)));
    EXPECT_EQ(job.checkpoint_dir(),
              absl::StrCat("runs/checkpoints/", expansion->sweep_id, "/", job.job_id()));
    EXPECT_EQ(job.config().steps(), 150u);  // fixed
    // 0.95 is adamw's default beta2: written out or left out, one config.
    EXPECT_FALSE(job.config().optimizer_args().contains("beta2"));
    EXPECT_EQ(job.config().warmup_steps(), 10u);  // default
  }
  EXPECT_EQ(expansion->jobs[1].config().context_length(), 128u);
  EXPECT_DOUBLE_EQ(expansion->jobs[0].config().learning_rate(), 3e-3);  // default
  EXPECT_DOUBLE_EQ(expansion->jobs[2].config().learning_rate(), 2e-3);  // override for mini
  EXPECT_EQ(expansion->jobs[2].config().model(), "mini");
}

TEST(GridTest, JobsCarryTheirMemoryPlanAndPriority) {
  v1::SweepSpec spec = Parse(R"(
name: plans
priority: 3
grid:
  model: [tiny, qwen3-0.6b]
fixed: {context_length: 4096, batch_size: 4, precision: bf16}
)");
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 2u);
  for (const v1::JobSpec& job : expansion->jobs) {
    const absl::StatusOr<MemoryPlan> plan =
        PlanMemory(*ModelByName(job.config().model()), RankWorkOf(job.config()));
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(job.memory_bytes(), static_cast<uint64_t>(plan->total())) << job.job_id();
    EXPECT_EQ(job.priority(), 3);
  }
  EXPECT_GT(expansion->jobs[1].memory_bytes(), 20 * expansion->jobs[0].memory_bytes());
}

// Cells that differ only in what a rank does (attention kind, state sharding) get plans of
// their own, not one shared by their model, optimizer and shape.
TEST(GridTest, EachCellsMemoryPlanIsItsOwn) {
  v1::SweepSpec spec = Parse(R"(
name: plans-apart
grid:
  attention: [dense, nsa]
  optimizer_sharding: [none, zero1]
fixed: {model: qwen3-0.6b, optimizer: soap, context_length: 8192, batch_size: 2, gpus: 2}
)");
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 4u);
  std::set<uint64_t> peaks;
  for (const v1::JobSpec& job : expansion->jobs) {
    const absl::StatusOr<MemoryPlan> plan =
        PlanMemory(*ModelByName(job.config().model()), RankWorkOf(job.config()));
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(job.memory_bytes(), static_cast<uint64_t>(plan->total())) << job.job_id();
    peaks.insert(job.memory_bytes());
  }
  EXPECT_EQ(peaks.size(), 4u);
}

TEST(GridTest, ConstraintDropsLongDenseCellsOfTheResearchGrid) {
  absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile("examples/qwen3-ablation.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  // 4 models x 2 attention x 5 optimizers x 4 contexts = 160; dense at 512K and 1M is 40.
  EXPECT_EQ(expansion->jobs.size(), 120u);
  ASSERT_EQ(expansion->dropped.size(), 40u);
  EXPECT_EQ(ExcludedLine(expansion->dropped[0]),
            "model=qwen3-0.6b attention=dense optimizer=adamw context_length=512K: contexts above "
            "128K need sparse attention");
  for (const v1::JobSpec& job : expansion->jobs) {
    EXPECT_TRUE(job.config().context_length() <= 131072 || job.config().attention() == "nsa")
        << CellLabel(job);
    const std::string& optimizer = job.config().optimizer();
    EXPECT_DOUBLE_EQ(job.config().learning_rate(),
                     optimizer == "adamw" || optimizer == "adamw8bit" ? 3e-4 : 1e-3);
  }
}

TEST(GridTest, ConditionsCompareParsedValues) {
  absl::StatusOr<Expansion> expansion = ExpandSweep(Parse(R"(
name: t
grid:
  attention: [dense, nsa]
  context_length: [131072, 524288]
constraints:
  - when: {context_length: 512K}
    require: {attention: nsa}
)"));
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  EXPECT_EQ(expansion->jobs.size(), 3u);
  ASSERT_EQ(expansion->dropped.size(), 1u);
  EXPECT_EQ(expansion->dropped[0].constraint(), 0);
  EXPECT_THAT(ExcludedLine(expansion->dropped[0]),
              ::testing::Eq("attention=dense context_length=524288: left out by "
                            "constraints[0]"));
}

TEST(GridTest, JobsCarryTheSweepsPriority) {
  v1::SweepSpec spec = Parse(R"(
name: t
grid:
  learning_rate: [1e-3, 2e-3]
)");
  absl::StatusOr<Expansion> plain = ExpandSweep(spec);
  spec.set_priority(7);
  absl::StatusOr<Expansion> urgent = ExpandSweep(spec);
  ASSERT_TRUE(plain.ok() && urgent.ok());
  ASSERT_EQ(urgent->jobs.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(urgent->jobs[i].priority(), 7);
    EXPECT_EQ(plain->jobs[i].priority(), 0);
  }
}

TEST(GridTest, OverridesApplyInOrder) {
  absl::StatusOr<Expansion> expansion = ExpandSweep(Parse(R"(
name: t
grid:
  model: [tiny, mini]
overrides:
  - when: {model: [tiny, mini]}
    set: {learning_rate: 1e-3, steps: 50}
  - when: {model: mini}
    set: {learning_rate: 2e-3}
)"));
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  ASSERT_EQ(expansion->jobs.size(), 2u);
  EXPECT_DOUBLE_EQ(expansion->jobs[0].config().learning_rate(), 1e-3);
  EXPECT_DOUBLE_EQ(expansion->jobs[1].config().learning_rate(), 2e-3);
  EXPECT_EQ(expansion->jobs[1].config().steps(), 50u);
}

// An override whose conditions only cells the constraints drop meet, or no cell at all, changes
// nothing: the expansion names it, and it changes no job.
TEST(GridTest, OverridesNoKeptCellMeetsAreIdle) {
  absl::StatusOr<Expansion> expansion = ExpandSweep(Parse(R"(
name: t
grid:
  attention: [dense, nsa]
  context_length: [32K, 1M]
constraints:
  - when: {context_length: 1M}
    require: {attention: nsa}
overrides:
  - when: {attention: dense, context_length: 1M}
    set: {steps: 50}
  - when: {attention: nsa}
    set: {steps: 70}
  - when: {context_length: 128K}
    set: {steps: 90}
)"));
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  EXPECT_EQ(expansion->idle_overrides, (std::vector<int>{0, 2}));
  ASSERT_EQ(expansion->jobs.size(), 3u);
  EXPECT_NE(expansion->jobs[0].config().steps(), 50u);
  EXPECT_EQ(expansion->jobs[1].config().steps(), 70u);
}

// An hf: model's cell is the model its config.json holds, not its path: editing the file makes
// another job, which a resubmission then runs rather than finding the old one's result.
TEST(GridTest, AnHfModelsJobFollowsItsConfigFile) {
  const std::string dir = ::testing::TempDir() + "/grid_hf_model";
  std::filesystem::create_directories(dir);
  const auto write = [&](int layers) {
    std::ofstream(dir + "/config.json", std::ios::trunc)
        << R"({"vocab_size": 300, "hidden_size": 48, "intermediate_size": 88,
        "num_hidden_layers": )"
        << layers << R"(, "num_attention_heads": 10, "num_key_value_heads": 2, "head_dim": 8,
        "rope_theta": 500.0})";
  };
  write(2);  // before the parse, which checks that the model's config is there
  const v1::SweepSpec spec = Parse("name: t\ngrid:\n  model: [hf:" + dir + "]\n");
  absl::StatusOr<Expansion> before = ExpandSweep(spec);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->jobs.size(), 1u);
  EXPECT_EQ(before->jobs[0].config().hf_model().num_hidden_layers(), 2u);
  EXPECT_EQ(ExpandSweep(spec)->jobs[0].job_id(), before->jobs[0].job_id());
  write(3);
  absl::StatusOr<Expansion> after = ExpandSweep(spec);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->jobs[0].config().hf_model().num_hidden_layers(), 3u);
  EXPECT_NE(after->jobs[0].job_id(), before->jobs[0].job_id());
}

TEST(GridTest, IdsAreStableAndFollowTheSpec) {
  const std::string yaml = "name: Stable Ids\ngrid:\n  model: [tiny, mini]\n";
  absl::StatusOr<Expansion> first = ExpandSweep(Parse(yaml));
  absl::StatusOr<Expansion> second = ExpandSweep(Parse(yaml));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_THAT(first->sweep_id, StartsWith("stable-ids-"));
  EXPECT_EQ(first->sweep_id, second->sweep_id);
  for (size_t i = 0; i < first->jobs.size(); ++i) {
    EXPECT_EQ(first->jobs[i].job_id(), second->jobs[i].job_id());
  }

  absl::StatusOr<Expansion> changed = ExpandSweep(Parse(yaml + "fixed: {steps: 99}\n"));
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->sweep_id, first->sweep_id);
  EXPECT_NE(changed->jobs[0].config_hash(), first->jobs[0].config_hash());
}

TEST(GridTest, SpecsDifferingOnlyInTheirSeedNeverShareASweepId) {
  // 32-bit ids collided after about 35,000 such specs; 64 bits make that about 2^-33 here.
  v1::SweepSpec spec = Parse("name: seeds\ngrid:\n  model: [tiny]\n");
  absl::flat_hash_set<std::string> ids;
  constexpr int kSpecs = 200'000;
  for (int seed = 0; seed < kSpecs; ++seed) {
    (*spec.mutable_fixed())["seed"] = std::to_string(seed);
    ids.insert(SweepId(spec));
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kSpecs));
}

// The same file gives these ids on every machine and in every build: a change here changes the
// ids a file's jobs get, so a file submitted as a new sweep would run its cells again. (They
// last changed when arguments at their defaults, here the file's beta2 of 0.95, left the
// config; a stored sweep keeps its ids, and `submit --update` still matches its jobs.)
TEST(GridTest, GoldenIdsOfTheDemoSweep) {
  absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile("examples/tiny-grid.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  EXPECT_EQ(expansion->sweep_id, "tiny-grid-5f6276bffc82a109");
  std::vector<std::string> job_ids;
  for (const v1::JobSpec& job : expansion->jobs) job_ids.push_back(job.job_id());
  EXPECT_THAT(job_ids, ::testing::ElementsAre("tiny-grid-5f6276bffc82a109-1d52f6",
                                              "tiny-grid-5f6276bffc82a109-dce5c5",
                                              "tiny-grid-5f6276bffc82a109-b4e111",
                                              "tiny-grid-5f6276bffc82a109-724361"));
}

TEST(GridTest, InvalidCellIsNamed) {
  absl::StatusOr<Expansion> expansion =
      ExpandSweep(Parse("name: t\ngrid:\n  model: [tiny]\n  context_length: [128, 1M]\n"));
  ASSERT_FALSE(expansion.ok());
  EXPECT_EQ(expansion.status().message(),
            "cell model=tiny context_length=1M: context_length: 1048576 requires attention nsa "
            "(got dense, which takes at most 131072)\n"
            "dense attention takes at most 131072 tokens; to train the cells at context_length "
            "1M with NSA instead, add to the file:\n"
            "  overrides:\n"
            "    - when: {context_length: [1M]}\n"
            "      set: {attention: nsa}");
}

// Regression: `beta_2: [0.5, 0.999]`, a typo for beta2, gave two bit-identical runs under
// different ids; `beta2: 1.0` was accepted though Adam needs beta2 < 1.
TEST(GridTest, OptimizerArgumentsAreCheckedPerCell) {
  absl::StatusOr<Expansion> typo = ExpandSweep(
      Parse("name: t\ngrid:\n  optimizer: [adamw]\n  optimizer_args.beta_2: [0.5, 0.999]\n"));
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(typo.status().message(),
            "cell optimizer=adamw optimizer_args.beta_2=0.5: optimizer_args.beta_2: adamw has no "
            "argument beta_2 (did you mean beta2?) (so do cells optimizer=adamw "
            "optimizer_args.beta_2=0.999)");
  absl::StatusOr<Expansion> range = ExpandSweep(
      Parse("name: t\ngrid:\n  optimizer: [adamw]\nfixed:\n  optimizer_args: {beta2: 1.0}\n"));
  ASSERT_FALSE(range.ok());
  EXPECT_EQ(range.status().message(),
            "cell optimizer=adamw: optimizer_args.beta2: 1 is outside [0, 1) for adamw");
  // An argument of one optimizer is refused for another: it goes in that optimizer's override.
  absl::StatusOr<Expansion> shared = ExpandSweep(Parse(
      "name: t\ngrid:\n  optimizer: [adamw, muon]\nfixed:\n  optimizer_args: {nesterov: true}\n"));
  ASSERT_FALSE(shared.ok());
  EXPECT_THAT(shared.status().message(), HasSubstr("adamw has no argument nesterov"));
  absl::StatusOr<Expansion> keyed = ExpandSweep(Parse(R"(
name: t
grid:
  optimizer: [adamw, muon]
overrides:
  - when: {optimizer: muon}
    set: {optimizer_args.nesterov: false, optimizer_args.ns_steps: 6}
)"));
  ASSERT_TRUE(keyed.ok()) << keyed.status();
  EXPECT_EQ(keyed->jobs[1].config().optimizer_args().at("nesterov"), 0);
}

TEST(GridTest, AttentionArgumentsAreTypedCheckedAndCanBeADimension) {
  absl::StatusOr<Expansion> grid = ExpandSweep(Parse(R"(
name: t
grid:
  attention: [dense, nsa]
  attention_args.window: [0, 128]
fixed:
  attention_args: {block_size: 32}
)"));
  ASSERT_TRUE(grid.ok()) << grid.status();
  // Dense takes no attention_args, so its two cells are one config, one job: the first's.
  ASSERT_EQ(grid->jobs.size(), 3u);
  EXPECT_EQ(CellLabel(grid->jobs[0]), "attention=dense attention_args.window=0");
  EXPECT_TRUE(grid->jobs[0].config().attention_args().empty());
  ASSERT_EQ(grid->shared_cells.size(), 1u);
  EXPECT_EQ(grid->shared_cells[0].label, "attention=dense attention_args.window=128");
  EXPECT_EQ(grid->shared_cells[0].runs_as, "attention=dense attention_args.window=0");
  EXPECT_EQ(grid->shared_cells[0].dimension, "attention_args.window");
  EXPECT_EQ(grid->shared_cells[0].attention, "dense");
  EXPECT_EQ(grid->kept_cells, 4u);
  EXPECT_EQ(grid->jobs[2].config().attention(), "nsa");
  EXPECT_EQ(grid->jobs[2].config().attention_args().at("window"), 128);
  EXPECT_EQ(grid->jobs[2].config().attention_args().at("block_size"), 32);
  absl::StatusOr<Expansion> typo = ExpandSweep(
      Parse("name: t\ngrid:\n  attention: [nsa]\nfixed:\n  attention_args: {windw: 64}\n"));
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.status().message(),
            "cell attention=nsa: attention_args.windw: nsa has no argument windw (did you mean "
            "window?)");
}

// With repeats, each of a shared cell's jobs is the earlier cell's job of the same seed; the
// cell is named once.
TEST(GridTest, ASharedCellSharesEachRepeat) {
  absl::StatusOr<Expansion> grid = ExpandSweep(Parse(R"(
name: t
grid:
  attention_args.window: [0, 64, 128]
  attention: [dense, nsa]
repeats: 2
)"));
  ASSERT_TRUE(grid.ok()) << grid.status();
  ASSERT_EQ(grid->jobs.size(), 8u);  // dense twice, nsa 3 x 2
  EXPECT_EQ(CellLabel(grid->jobs[0]), "attention_args.window=0 attention=dense seed=1");
  EXPECT_EQ(CellLabel(grid->jobs[1]), "attention_args.window=0 attention=dense seed=2");
  ASSERT_EQ(grid->shared_cells.size(), 2u);
  EXPECT_EQ(grid->shared_cells[1].label, "attention_args.window=128 attention=dense");
  EXPECT_EQ(grid->shared_cells[1].runs_as, "attention_args.window=0 attention=dense");
}

// Cells that come to one config other than through arguments their attention ignores are
// refused, naming both: the file most likely meant them to differ. (cpu_ranks 1 is the default,
// 0.)
TEST(GridTest, CellsOfOneConfigAreRefused) {
  absl::StatusOr<Expansion> grid = ExpandSweep(Parse("name: t\ngrid:\n  cpu_ranks: [0, 1]\n"));
  ASSERT_FALSE(grid.ok());
  EXPECT_EQ(grid.status().message(),
            "cells cpu_ranks=0 and cpu_ranks=1 resolve to the same config");
}

TEST(GridTest, EveryExampleExpands) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator("examples")) {
    if (entry.path().extension() != ".yaml") continue;
    absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile(entry.path().string());
    ASSERT_TRUE(spec.ok()) << entry.path() << ": " << spec.status();
    absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
    ASSERT_TRUE(expansion.ok()) << entry.path() << ": " << expansion.status();
    EXPECT_TRUE(expansion->idle_overrides.empty())
        << entry.path() << ": an override changes nothing";
  }
}

TEST(GridTest, NoCellLeftIsAnError) {
  absl::StatusOr<Expansion> expansion = ExpandSweep(Parse(R"(
name: t
grid:
  attention: [dense]
  context_length: [1M]
constraints:
  - when: {context_length: 1M}
    require: {attention: nsa}
)"));
  EXPECT_EQ(expansion.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GridTest, ValidatesSpecsFromOtherSources) {
  v1::SweepSpec spec;
  spec.set_name("t");
  v1::Dimension& dimension = *spec.add_grid();
  dimension.set_name("optimzer");
  dimension.add_values("adamw");
  EXPECT_EQ(ValidateSweepSpec(spec).message(),
            "grid.optimzer: unknown setting (did you mean optimizer?)");
  dimension.set_name("optimizer");
  EXPECT_TRUE(ValidateSweepSpec(spec).ok());
  spec.mutable_fixed()->insert({"optimizer", "soap"});
  EXPECT_EQ(ValidateSweepSpec(spec).message(),
            "fixed.optimizer: also a grid dimension; set it in one place");
  spec.clear_fixed();
  // An override that changed a grid dimension would run muon under adamw's label (or two cells'
  // one config): refused before any cell is resolved.
  dimension.add_values("muon");
  v1::Override& override = *spec.add_overrides();
  v1::Condition& when = *override.add_when();
  when.set_dimension("optimizer");
  when.add_values("adamw");
  (*override.mutable_set())["optimizer"] = "muon";
  absl::StatusOr<Expansion> expansion = ExpandSweep(spec);
  ASSERT_FALSE(expansion.ok());
  EXPECT_EQ(expansion.status().message(),
            "overrides[0].set.optimizer: a grid dimension, which an override may not change (its "
            "cells would run what their labels do not say); drop cells with constraints, or list "
            "them with cells");
}

// Cells broken in different ways are reported together, a line a problem in run order, so that
// a file is fixed in one round: each of a cell's problems, grouped by the cells they break.
TEST(GridTest, CellsWithDifferentProblemsAreAllReported) {
  absl::StatusOr<Expansion> expansion =
      ExpandSweep(Parse("name: t\ngrid:\n  context_length: [128, 1M]\n"
                        "  optimizer_args.beta2: [0.9, 1.0, 2.0, 3.0]\n"));
  ASSERT_FALSE(expansion.ok());
  EXPECT_EQ(expansion.status().message(),
            "cell context_length=128 optimizer_args.beta2=1.0: optimizer_args.beta2: 1 is outside "
            "[0, 1) for adamw (so do cells context_length=1M optimizer_args.beta2=1.0)\n"
            "cell context_length=128 optimizer_args.beta2=2.0: optimizer_args.beta2: 2 is outside "
            "[0, 1) for adamw (so do cells context_length=1M optimizer_args.beta2=2.0)\n"
            "cell context_length=128 optimizer_args.beta2=3.0: optimizer_args.beta2: 3 is outside "
            "[0, 1) for adamw (so do cells context_length=1M optimizer_args.beta2=3.0)\n"
            "cell context_length=1M optimizer_args.beta2=0.9: context_length: 1048576 requires "
            "attention nsa (got dense, which takes at most 131072) (so do cells context_length=1M "
            "optimizer_args.beta2=1.0, context_length=1M optimizer_args.beta2=2.0, "
            "context_length=1M optimizer_args.beta2=3.0)\n"
            "dense attention takes at most 131072 tokens; to train the cells at context_length "
            "1M with NSA instead, add to the file:\n"
            "  overrides:\n"
            "    - when: {context_length: [1M]}\n"
            "      set: {attention: nsa}");
}

}  // namespace
}  // namespace ablate::sweep
