// Each job's planned memory per rank, for placement: its device peak (JobSpec.memory_bytes) and
// the host memory it pins (JobSpec.host_memory_bytes). A sweep's cells share a few (model, rank
// work) combinations, so each plan is computed once per combination.
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
  struct Planned {
    uint64_t peak_bytes = 0;  // one rank's device peak (MemoryPlan::total)
    uint64_t host_bytes = 0;  // one rank's pinned host memory (MemoryPlan::host_checkpoints)
  };

  // One rank's plan (common/model_math.h: PlanMemory of RankWorkOf(config)), under bf16 the
  // larger of its plans with and without the fused kernels, term by term: where the job lands
  // decides which runs. Zeros (fits anywhere) when the model or optimizer has no plan:
  // validation already accepted the names, and a trainer that cannot run them says so itself.
  Planned Plan(const v1::TrainConfig& config);

 private:
  absl::flat_hash_map<std::string, Planned> plans_;  // RankWork's fields as a key -> plan
};

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_MEMORY_PLANNER_H_
