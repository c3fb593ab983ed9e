#include "trainer_lib/train/rank_memory.h"

#include "common/host_memory.h"
#include "common/model_math.h"

namespace ablate::train {

absl::StatusOr<int64_t> PlanRankMemory(const v1::ModelConfig& model,
                                       const v1::TrainConfig& config, int world_size,
                                       bool shard_optimizer, bool fused_kernels,
                                       uint64_t host_available_bytes) {
  RankWork work = RankWorkOf(config);
  work.optimizer_shards = shard_optimizer ? world_size : 1;
  // The kernels' own conditions (fused_norm.h, fused_swiglu.h, cross_entropy.h) beyond these
  // hold for Qwen3's layers and loss: fp32 weights, no biases, a bf16 compute dtype.
  work.fused_kernels = work.bf16 && fused_kernels;
  absl::StatusOr<MemoryPlan> plan = PlanMemory(model, work);
  if (!plan.ok()) return 0;
  if (absl::Status s = CheckPinnedHostMemory(plan->host_checkpoints, world_size,
                                             config.checkpoint_offload_layers(),
                                             host_available_bytes);
      !s.ok()) {
    return s;
  }
  return plan->total();
}

}  // namespace ablate::train
