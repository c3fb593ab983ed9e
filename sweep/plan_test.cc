// Plans of the example sweeps against counts, exclusions, derived settings and estimates
// worked out by hand (each number's arithmetic is beside it).
#include "sweep/plan.h"

#include <cstdint>
#include <string>

#include "common/catalog.h"
#include "common/model_math.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweep/sweep_file.h"

namespace ablate::sweep {
namespace {

using ::testing::ElementsAre;

v1::SweepPlan PlanFile(const std::string& path) {
  absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile(path);
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return {};
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  EXPECT_TRUE(expansion.ok()) << expansion.status();
  if (!expansion.ok()) return {};
  return PlanOf(*spec, *expansion);
}

std::string ValueOf(const v1::CellPlan& cell, const std::string& dimension) {
  for (const v1::CellValue& value : cell.cell()) {
    if (value.dimension() == dimension) return value.value();
  }
  return "";
}

TEST(PlanTest, TheNsaResearchGrid) {
  const v1::SweepPlan plan = PlanFile("examples/research-nsa.yaml");
  EXPECT_EQ(plan.shape(), "grid");
  // 3 models x 2 attention x 3 optimizers x 4 contexts = 72; dense at 512K and 1M: 3*3*2 = 18.
  ASSERT_EQ(plan.cells_size(), 54);
  ASSERT_EQ(plan.excluded_size(), 18);
  for (const v1::ExcludedCell& excluded : plan.excluded()) {
    EXPECT_EQ(excluded.constraint(), 0);
    EXPECT_EQ(excluded.reason(), "dense attention stops at 128K");
  }
  ASSERT_EQ(plan.dimensions_size(), 4);
  EXPECT_THAT(plan.dimensions(0).jobs(), ElementsAre(18, 18, 18));    // model
  EXPECT_THAT(plan.dimensions(1).jobs(), ElementsAre(18, 36));        // dense, nsa
  EXPECT_THAT(plan.dimensions(2).jobs(), ElementsAre(18, 18, 18));    // optimizer
  EXPECT_THAT(plan.dimensions(3).jobs(), ElementsAre(18, 18, 9, 9));  // 32K 128K 512K 1M

  // 8M tokens per step: 256, 64, 16 and 8 sequences; over 8 GPUs of one sequence each,
  // 32, 8, 2 and 1 accumulation steps.
  const uint64_t tokens = 2000ull * 8 * 1024 * 1024;  // 16,777,216,000 per job
  for (const v1::CellPlan& cell : plan.cells()) {
    const std::string context = ValueOf(cell, "context_length");
    const uint32_t batch = context == "32K"    ? 256
                           : context == "128K" ? 64
                           : context == "512K" ? 16
                                               : 8;
    EXPECT_EQ(cell.batch_size(), batch) << context;
    EXPECT_EQ(cell.micro_batch_size(), 1u);
    EXPECT_EQ(cell.accumulation_steps(), batch / 8) << context;
    EXPECT_EQ(cell.tokens(), tokens);
    EXPECT_EQ(cell.gpus(), 8u);
    const std::string optimizer = ValueOf(cell, "optimizer");
    EXPECT_DOUBLE_EQ(cell.learning_rate(), optimizer == "adamw"  ? 3e-4
                                           : optimizer == "muon" ? 0.02
                                                                 : 1e-3);
    EXPECT_GT(cell.memory_bytes(), 0u);
  }
  EXPECT_EQ(plan.tokens(), 54 * tokens);  // 905,969,664,000

  // Qwen3-0.6B, dense, 32K: 6 * 596,049,920 matrix parameters (the embedding is tied, so the
  // head) + 12 * 28 layers * 16 heads * 128 * (32768 + 1) / 2 keys = 14,850,932,736 per token.
  const v1::CellPlan& first = plan.cells(0);
  ASSERT_EQ(ValueOf(first, "model"), "qwen3-0.6b");
  ASSERT_EQ(ValueOf(first, "attention"), "dense");
  ASSERT_EQ(ValueOf(first, "context_length"), "32K");
  EXPECT_EQ(first.parameters(), 596'049'920);
  EXPECT_DOUBLE_EQ(first.flops(), 14'850'932'736.0 * static_cast<double>(tokens));
  RankWork work;
  work.micro_batch_size = 1;
  work.context_length = 32768;
  work.activation_checkpointing = true;
  const MemoryPlan memory = PlanMemory(*ModelByName("qwen3-0.6b"), work).value();
  EXPECT_EQ(first.memory_bytes(), static_cast<uint64_t>(memory.total()));

  // Throughput only for qwen3-0.6b: 6 cells at 32K at 40,000 tokens/s per GPU, 12 others at
  // 20,000: tokens / (rate * 8) / 3600 hours on 8 GPUs each.
  EXPECT_DOUBLE_EQ(first.gpu_hours(), 16'777'216'000.0 / 40'000 / 3600);  // 116.508...
  EXPECT_DOUBLE_EQ(first.hours(), first.gpu_hours() / 8);
  EXPECT_NEAR(plan.gpu_hours(), 3495.253333333, 1e-6);
  EXPECT_EQ(plan.cells_without_estimate(), 36u);
  for (const v1::CellPlan& cell : plan.cells()) {
    EXPECT_EQ(cell.has_gpu_hours(), ValueOf(cell, "model") == "qwen3-0.6b");
  }
}

// Regression: every NSA cell was costed with the default shape and counted dense's parameters,
// so a grid over attention_args showed one cost for all.
TEST(PlanTest, NsaCellsAreCostedWithTheirOwnShape) {
  absl::StatusOr<v1::SweepSpec> spec = ParseSweepYaml(R"(
name: nsa-shapes
grid:
  attention: [dense, nsa]
  attention_args.window: [0, 512]
  attention_args.learned_compression: [false, true]
fixed: {model: qwen3-0.6b, context_length: 32K, steps: 1, warmup_steps: 0, batch_size: 1}
)",
                                                      "nsa-shapes.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  const v1::SweepPlan plan = PlanOf(*spec, *expansion);
  // The four dense cells differ only in arguments dense ignores: one job.
  ASSERT_EQ(plan.cells_size(), 5);
  const v1::ModelConfig model = *ModelByName("qwen3-0.6b");
  for (const v1::CellPlan& cell : plan.cells()) {
    const bool nsa = ValueOf(cell, "attention") == "nsa";
    const bool learned = ValueOf(cell, "attention_args.learned_compression") == "true";
    NsaShape shape;
    shape.window = ValueOf(cell, "attention_args.window") == "0" ? 0 : 512;
    shape.learned_compression = learned;
    // 28 layers of gates [3 * 16 heads, 1024]; under learned compression the maps [8, 32 * 128,
    // 128] and encodings [8, 32, 128] of keys and values: 2 * 28 * (4,194,304 + 32,768).
    const int64_t extra = !nsa ? 0 : 1'376'256 + (learned ? 236'716'032 : 0);
    EXPECT_EQ(cell.parameters(), 596'049'920 + extra) << cell.job_id();
    EXPECT_DOUBLE_EQ(cell.flops(),
                     32768.0 * TrainingFlopsPerToken(model, 32768, nsa ? "nsa" : "dense", shape))
        << cell.job_id();
  }
  // Qwen3-0.6B under NSA at 32K with fla's shape (block 64, 16 blocks, window 512): 6 *
  // (596,049,920 + 1,376,256) + 12 * 28 * 16 * 128 * (255.515625 compressed + 1008.015625
  // selected + 508.0078125 window keys per query) = 4,803,602,688 FLOPs per token.
  EXPECT_DOUBLE_EQ(TrainingFlopsPerToken(model, 32768, "nsa", NsaShape{}), 4'803'602'688.0);
}

TEST(PlanTest, TheAdamw8bitGridAtA64KContext) {
  const v1::SweepPlan plan = PlanFile("examples/research-64k.yaml");
  ASSERT_EQ(plan.cells_size(), 12);  // 3 x 2 x 2, nothing excluded
  EXPECT_EQ(plan.excluded_size(), 0);
  for (const v1::CellPlan& cell : plan.cells()) {
    EXPECT_EQ(cell.batch_size(), 64u);         // 4M / 64K
    EXPECT_EQ(cell.accumulation_steps(), 4u);  // 64 / (2 per micro-batch * 8 GPUs)
    EXPECT_EQ(cell.tokens(), 4'194'304'000u);  // 1000 steps * 4M
  }
  // 4 cells per model at 30,000, 12,000 and 5,000 tokens/s per GPU.
  EXPECT_NEAR(plan.gpu_hours(), 4 * 4194304000.0 / 3600 * (1 / 30e3 + 1 / 12e3 + 1 / 5e3), 1e-9);
  EXPECT_NEAR(plan.gpu_hours(), 1475.77362963, 1e-6);
  EXPECT_EQ(plan.cells_without_estimate(), 0u);
}

TEST(PlanTest, TheOptimizerStudyWithRepeats) {
  const v1::SweepPlan plan = PlanFile("examples/optimizer-study.yaml");
  EXPECT_EQ(plan.shape(), "baseline");
  EXPECT_EQ(plan.repeats(), 3u);
  ASSERT_EQ(plan.cells_size(), 9);
  EXPECT_THAT(plan.dimensions(0).jobs(), ElementsAre(3, 3, 3));
  // 100 steps * 16 sequences * 128 tokens on one CPU slot at 20,000 tokens/s.
  for (const v1::CellPlan& cell : plan.cells()) {
    EXPECT_EQ(cell.tokens(), 204'800u);
    EXPECT_EQ(cell.gpus(), 0u);
    EXPECT_EQ(cell.accumulation_steps(), 1u);
    EXPECT_DOUBLE_EQ(cell.hours(), 204'800.0 / 20'000 / 3600);
  }
  EXPECT_NEAR(plan.gpu_hours(), 9 * 204'800.0 / 20'000 / 3600, 1e-12);
}

TEST(PlanTest, ShapesOfTheExamples) {
  const v1::SweepPlan ofat = PlanFile("examples/shapes/one-factor.yaml");
  EXPECT_EQ(ofat.shape(), "baseline");
  EXPECT_EQ(ofat.cells_size(), 6);
  EXPECT_EQ(ofat.excluded_size(), 1);
  EXPECT_EQ(ofat.cells_without_estimate(), 6u);  // no throughput table: unknown
  EXPECT_EQ(ofat.gpu_hours(), 0);
  // 2048 tokens per step: 16 sequences of 128, 8 of 256.
  EXPECT_EQ(ofat.cells(0).batch_size(), 16u);
  EXPECT_EQ(ofat.cells(5).batch_size(), 8u);
  EXPECT_EQ(PlanFile("examples/shapes/cells.yaml").cells_size(), 3);
  const v1::SweepPlan sample = PlanFile("examples/shapes/sample.yaml");
  EXPECT_EQ(sample.shape(), "sample");
  EXPECT_EQ(sample.cells_size(), 6);
  EXPECT_EQ(PlanFile("examples/tiny-grid.yaml").cells_size(), 4);
}

// A tuned sweep's plan: its cells' search spaces, each first seed's rungs, and the job count
// validate, plan and submit print.
TEST(PlanTest, ThePlanCountsTheTrialsOfTheTuningExample) {
  absl::StatusOr<v1::SweepSpec> spec = LoadSweepFile("examples/optimizer-tuning.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<Expansion> expansion = ExpandSweep(*spec);
  ASSERT_TRUE(expansion.ok()) << expansion.status();
  EXPECT_EQ(expansion->jobs.size(), 30u);  // 3 optimizers x 10 points on the first rung
  const v1::SweepPlan plan = PlanOf(*spec, *expansion);
  ASSERT_EQ(plan.cells_size(), 9);    // 3 optimizers x 3 seeds, at 300 steps
  EXPECT_EQ(plan.search_size(), 10);  // 5 multiples of each optimizer's rate x 2 decays
  EXPECT_EQ(plan.search(0).values(0).value(), "x0.25");
  EXPECT_EQ(plan.reduction_factor(), 3u);
  EXPECT_EQ(plan.trials(), 39u);  // 3 cells x (10 + 3)
  // The one count validate, plan and submit print: 9 finals + 39 trials, 30 queued at once.
  const v1::JobCountPlan& count = plan.job_count();
  EXPECT_EQ(count.cells(), 3u);
  EXPECT_EQ(count.seeds(), 3u);
  EXPECT_EQ(count.finals(), 9u);
  ASSERT_EQ(count.rungs_size(), 2);
  EXPECT_EQ(count.rungs(0).trials(), 30u);  // 3 cells x 10 points
  EXPECT_EQ(count.rungs(0).steps(), 25u);
  EXPECT_EQ(count.rungs(1).trials(), 9u);  // 3 cells x floor(10 / 3)
  EXPECT_EQ(count.rungs(1).steps(), 75u);
  EXPECT_EQ(count.trials(), 39u);
  EXPECT_EQ(count.total(), 48u);
  EXPECT_EQ(count.submitted(), expansion->jobs.size());
  const uint64_t per_step = 16 * 128;  // the default batch of 16 sequences of 128 tokens
  uint64_t trial_tokens = 0;
  for (int i = 0; i < plan.cells_size(); ++i) {
    const v1::CellPlan& cell = plan.cells(i);
    EXPECT_TRUE(cell.tuned());
    EXPECT_TRUE(cell.job_id().empty());
    // No learning rate of its own until the tuning chooses: the search space instead.
    EXPECT_EQ(cell.learning_rate(), 0);
    ASSERT_EQ(cell.tuned_parameters_size(), 2);
    EXPECT_EQ(cell.tuned_parameters(0).name(), "learning_rate");
    EXPECT_TRUE(cell.tuned_parameters(0).relative());
    EXPECT_EQ(cell.tuned_parameters(0).high(), 4);
    EXPECT_EQ(cell.tuned_parameters(1).name(), "weight_decay");
    EXPECT_EQ(cell.tokens(), 300 * per_step);
    EXPECT_EQ(cell.has_tuning(), i % 3 == 0) << i;  // on each cell's first seed
    if (!cell.has_tuning()) continue;
    ASSERT_EQ(cell.tuning().rungs_size(), 2);
    EXPECT_EQ(cell.tuning().rungs(0).trials(), 10u);
    EXPECT_EQ(cell.tuning().rungs(0).steps(), 25u);
    EXPECT_EQ(cell.tuning().rungs(1).trials(), 3u);
    EXPECT_EQ(cell.tuning().rungs(1).steps(), 75u);
    EXPECT_EQ(cell.tuning().steps(), 475u);  // 10 x 25 + 3 x 75
    EXPECT_EQ(cell.tuning().tokens(), 475 * per_step);
    EXPECT_TRUE(cell.tuning().has_gpu_hours());
    ASSERT_EQ(cell.tuning().points_size(), 10);
    trial_tokens += cell.tuning().tokens();
  }
  // Each optimizer searches a quarter to four times its own rate (derived.learning_rate).
  EXPECT_EQ(plan.cells(0).tuning().points(0).values(0).value(), "0.00075");  // adamw 3e-3
  EXPECT_EQ(plan.cells(3).tuning().points(8).values(0).value(), "0.08");     // muon 2e-2
  EXPECT_EQ(plan.tokens(), 9 * 300 * per_step + trial_tokens);
  // 20,000 tokens a second: (2700 + 1425) steps x 2048 tokens / 20,000 / 3600.
  EXPECT_NEAR(plan.gpu_hours(), 4125.0 * 2048 / 20000 / 3600, 1e-9);
}

}  // namespace
}  // namespace ablate::sweep
