// The memory one rank of a job plans to hold (common/model_math.h's PlanMemory of the rank's
// work as it runs here), and the check that its host can pin what that plan offloads
// (common/host_memory.h). Torch-free: the trainer passes what it decided about the device.
//
// Thread-safety: a pure function.
#ifndef ABLATE_TRAINER_LIB_TRAIN_RANK_MEMORY_H_
#define ABLATE_TRAINER_LIB_TRAIN_RANK_MEMORY_H_

#include <cstdint>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"

namespace ablate::train {

// The planned peak bytes of one of the job's `world_size` ranks, all on one host (worker/
// spawn.h), with the optimizer state sharded over them when `shard_optimizer` and the fused
// kernels running when `fused_kernels`; 0 when the model or optimizer has no plan.
// ResourceExhausted (CheckPinnedHostMemory's message) when the ranks would pin more of the
// host's memory than `host_available_bytes` (MemAvailable; 0: unknown) leaves them.
absl::StatusOr<int64_t> PlanRankMemory(const v1::ModelConfig& model,
                                       const v1::TrainConfig& config, int world_size,
                                       bool shard_optimizer, bool fused_kernels,
                                       uint64_t host_available_bytes);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_RANK_MEMORY_H_
