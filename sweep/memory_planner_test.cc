#include "sweep/memory_planner.h"

#include <gtest/gtest.h>

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
  std::vector<v1::TrainConfig> cells(5, base);
  (*cells[1].mutable_optimizer_args())["max_precond_dim"] = 100;
  cells[2].set_attention("nsa");
  cells[3] = cells[2];
  (*cells[3].mutable_attention_args())["learned_compression"] = 1;
  cells[4].set_activation_checkpointing(true);
  cells[4].set_checkpoint_offload_layers(4);
  MemoryPlanner planner;
  std::vector<uint64_t> peaks;
  for (const v1::TrainConfig& cell : cells) peaks.push_back(planner.PeakBytes(cell));
  for (size_t i = 0; i < cells.size(); ++i) {
    MemoryPlanner alone;
    EXPECT_EQ(peaks[i], alone.PeakBytes(cells[i])) << i;
    for (size_t j = 0; j < i; ++j) EXPECT_NE(peaks[i], peaks[j]) << i << " " << j;
  }
}

}  // namespace
}  // namespace ablate::sweep::internal
