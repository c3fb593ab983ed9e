#include "sweep/memory_planner.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "common/catalog.h"
#include "common/model_math.h"
#include "common/train_config.h"

namespace ablate::sweep::internal {
namespace {

// One planner, cells that differ in one setting the plan reads: each gets its own plan, the
// one PlanMemory gives for it alone (the cache keys on every field of RankWork).
TEST(MemoryPlannerTest, CellsThatDifferInAnyPlannedSettingPlanApart) {
  v1::TrainConfig base = DefaultTrainConfig();
  base.set_model("qwen3-0.6b");
  base.set_optimizer("soap");
  base.set_context_length(4096);
  std::vector<v1::TrainConfig> cells(6, base);
  (*cells[1].mutable_optimizer_args())["max_precond_dim"] = 100;
  cells[2].set_attention("nsa");
  cells[3] = cells[2];
  (*cells[3].mutable_attention_args())["learned_compression"] = 1;
  cells[4].set_activation_checkpointing(true);
  cells[5] = cells[4];
  cells[5].set_checkpoint_offload_layers(4);
  MemoryPlanner planner;
  std::vector<uint64_t> peaks;
  peaks.reserve(cells.size());
  for (const v1::TrainConfig& cell : cells) peaks.push_back(planner.Plan(cell).peak_bytes);
  for (size_t i = 0; i < cells.size(); ++i) {
    MemoryPlanner alone;
    EXPECT_EQ(peaks[i], alone.Plan(cells[i]).peak_bytes) << i;
    for (size_t j = 0; j < i; ++j) EXPECT_NE(peaks[i], peaks[j]) << i << " " << j;
  }
}

// A bf16 job is placed by the larger of its plans with and without the fused kernels: eager
// layers keep more, but NSA's kernels hold more at 1M tokens than its reference does.
TEST(MemoryPlannerTest, Bf16JobsArePlacedByTheLargerOfTheirPlans) {
  v1::TrainConfig config = DefaultTrainConfig();
  config.set_model("qwen3-0.6b");
  config.set_precision("bf16");
  config.set_attention("nsa");
  config.set_context_length(1 << 20);
  config.set_batch_size(1);
  config.set_activation_checkpointing(true);
  const v1::ModelConfig model = *ModelByName("qwen3-0.6b");
  RankWork work = RankWorkOf(config);
  const int64_t eager = PlanMemory(model, work)->total();
  work.fused_kernels = true;
  const int64_t fused = PlanMemory(model, work)->total();
  EXPECT_GT(fused, eager);
  MemoryPlanner planner;
  EXPECT_EQ(planner.Plan(config).peak_bytes, static_cast<uint64_t>(fused));
  config.set_context_length(4096);  // dense-like sizes: the eager layers are the larger
  config.set_attention("dense");
  config.set_activation_checkpointing(false);
  work = RankWorkOf(config);
  EXPECT_EQ(planner.Plan(config).peak_bytes,
            static_cast<uint64_t>(PlanMemory(model, work)->total()));
}

// A job that offloads layers pins their inputs in host memory, planned as the model math plans
// it; one that offloads none pins nothing.
TEST(MemoryPlannerTest, OffloadedLayersPlanThePinnedHostMemory) {
  v1::TrainConfig config = DefaultTrainConfig();
  config.set_model("qwen3-0.6b");
  config.set_precision("bf16");
  config.set_context_length(32768);
  config.set_batch_size(1);
  config.set_activation_checkpointing(true);
  MemoryPlanner planner;
  EXPECT_EQ(planner.Plan(config).host_bytes, 0u);
  config.set_checkpoint_offload_layers(20);
  const MemoryPlanner::Planned planned = planner.Plan(config);
  RankWork work = RankWorkOf(config);
  int64_t host = 0;  // the larger of the plans with and without the fused kernels, as placed
  for (const bool fused : {false, true}) {
    work.fused_kernels = fused;
    host = std::max(host, PlanMemory(*ModelByName("qwen3-0.6b"), work)->host_checkpoints);
  }
  EXPECT_GT(host, 0);
  EXPECT_EQ(planned.host_bytes, static_cast<uint64_t>(host));
}

}  // namespace
}  // namespace ablate::sweep::internal
