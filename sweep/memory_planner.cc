#include "sweep/memory_planner.h"

#include <algorithm>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/model_math.h"

namespace ablate::sweep::internal {

MemoryPlanner::Planned MemoryPlanner::Plan(const v1::TrainConfig& config) {
  const RankWork work = RankWorkOf(config);
  // Every field of RankWork: cells that differ in any of them plan differently.
  std::string key = absl::StrCat(
      config.model(), "|", work.optimizer, "|", work.micro_batch_size, "|", work.context_length,
      "|", work.bf16, "|", work.fused_kernels, "|", work.activation_checkpointing, "|",
      work.offloaded_layers, "|", work.loss_chunk_tokens, "|", work.attention, "|",
      work.nsa.block_size, "|", work.nsa.selected_blocks, "|", work.nsa.window, "|",
      work.nsa.learned_compression, "|", work.nsa.compression_kernel, "|",
      work.nsa.compression_stride, "|", work.nsa.paper_selection, "|", work.optimizer_shards);
  // A protobuf map's order is unspecified: the arguments in name order.
  const std::map<std::string, double> args(work.optimizer_args.begin(), work.optimizer_args.end());
  for (const auto& [name, value] : args) absl::StrAppend(&key, "|", name, "=", value);
  auto [it, inserted] = plans_.try_emplace(key);
  if (inserted) {
    // Where the job lands decides whether the trainer runs its fused kernels (RankWork's
    // fused_kernels): a bf16 job is planned both ways and placed by the larger.
    absl::StatusOr<v1::ModelConfig> model = ModelByName(config.model());
    for (const bool fused : {false, work.bf16}) {
      RankWork way = work;
      way.fused_kernels = fused;
      absl::StatusOr<MemoryPlan> plan =
          model.ok() ? PlanMemory(*model, way) : absl::StatusOr<MemoryPlan>(model.status());
      if (!plan.ok()) continue;
      Planned& planned = it->second;
      planned.peak_bytes = std::max(planned.peak_bytes, static_cast<uint64_t>(plan->total()));
      planned.host_bytes =
          std::max(planned.host_bytes, static_cast<uint64_t>(plan->host_checkpoints));
    }
  }
  return it->second;
}

}  // namespace ablate::sweep::internal
