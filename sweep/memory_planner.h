// Each job's planned peak memory per rank, for placement (JobSpec.memory_bytes). A sweep's cells
// share a few (model, rank work) combinations, so each plan is computed once per combination.
// Not thread-safe: give each thread its own planner.
#ifndef ABLATE_SWEEP_MEMORY_PLANNER_H_
#define ABLATE_SWEEP_MEMORY_PLANNER_H_

#include <cstdint>
#include <string>

#include "ablate/v1/config.pb.h"
#include "absl/container/flat_hash_map.h"

namespace ablate::sweep::internal {

class MemoryPlanner {
 public:
  // Bytes of one rank's planned peak (common/model_math.h: PlanMemory of RankWorkOf(config)),
  // under bf16 the larger of its plans with and without the fused kernels: where the job lands
  // decides which runs.
  // 0 (fits anywhere) when the model or optimizer has no plan: validation already accepted
  // the names, and a trainer that cannot run them says so itself.
  uint64_t PeakBytes(const v1::TrainConfig& config);

 private:
  absl::flat_hash_map<std::string, uint64_t> peaks_;  // RankWork's fields as a key -> bytes
};

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_MEMORY_PLANNER_H_
