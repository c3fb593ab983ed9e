// Optimizer state sharded across the ranks of a data-parallel job: ZeRO stage 1 (Rajbhandari
// et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models", SC 2020).
//
// Each parameter has one owner rank, which alone keeps its optimizer state and computes its
// update; whole parameters are owned, never slices, so per-parameter state such as SOAP's and
// Shampoo's preconditioners or Muon's momentum stays whole. After the owners' updates every
// parameter is broadcast from its owner (one flattened broadcast per rank), so all ranks again
// hold identical parameters. Gradients are still summed on every rank (GradientSync), which
// keeps clipping and the non-finite check the same everywhere. Owners are assigned
// largest-first to the least-loaded rank (ties to the lower rank): a pure function of the
// parameter shapes and the rank count.
//
// Checkpoints (the piece "optimizer"): one process writes optimizer.pt, as OptimizerState
// does; N ranks write optimizer-R.pt per rank (each rank stages its own file, then rank 0
// moves them into the checkpoint folder) and optimizer-owners.txt ("world N", then one
// "NAME OWNER" line per parameter). Loading reads either layout at any rank count: for each
// saved shard holding a parameter this rank now owns, an optimizer over that shard's
// parameters reads the file, and the owned parameters' states move into this rank's.
//
// Thread-safety: one thread, like the optimizer it wraps; collectives, so every rank calls
// BroadcastUpdated and StageShard at the same points.
#ifndef ABLATE_TRAINER_LIB_DIST_ZERO_H_
#define ABLATE_TRAINER_LIB_DIST_ZERO_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include <c10/core/Device.h>
#include <torch/optim/optimizer.h>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "trainer_lib/dist/process_group.h"
#include "trainer_lib/optim/optimizer.h"
#include "trainer_lib/state/stateful.h"

namespace ablate::train::dist {

// Whether the ranks of `config` shard the optimizer state, as its optimizer_sharding says:
// zero1 shards, none replicates, and auto (or empty) shards only when one rank's memory plan
// (common/model_math.h) for `model` with the state replicated exceeds 90% of
// `device_memory_bytes`, the memory of the rank's GPU (0 for a CPU: auto never shards there).
// Sharding saves (N-1)/N of the state but broadcasts every parameter after each step, which
// replicated state (PyTorch DDP's way) does not pay. One rank never shards. PlanMemory's
// InvalidArgument under auto.
absl::StatusOr<bool> ShardsOptimizerState(const v1::TrainConfig& config,
                                          const v1::ModelConfig& model,
                                          int64_t device_memory_bytes);

// The owner rank of each of `parameters` (same order), for `world_size` >= 1 ranks.
std::vector<int> AssignOwners(const std::vector<NamedParameter>& parameters, int world_size);

class ShardedOptimizer {
 public:
  // This rank's optimizer (MakeOptimizer over the parameters it owns) for the parameters of
  // one model, all of one dtype. `group` is borrowed (null: one process, which owns all).
  // MakeOptimizer's errors; InvalidArgument when a rank would own no parameter.
  static absl::StatusOr<std::unique_ptr<ShardedOptimizer>> Make(
      const v1::TrainConfig& config, std::vector<NamedParameter> parameters, ProcessGroup* group);

  // Steps only the owned parameters; zero_grad clears only theirs.
  torch::optim::Optimizer& local() { return *local_; }

  // After local().step(): every parameter takes its owner's values.
  void BroadcastUpdated();

  // With several ranks, on every rank before rank 0 saves a checkpoint into `checkpoint_dir`:
  // writes this rank's shard into the folder's staging area (.tmp-optimizer-shards, which the
  // checkpoint's pruning clears if left over). OK on every rank once every rank's is written;
  // otherwise this rank's FileError (ResourceExhausted on a full disk, Internal), or Internal
  // when another rank failed. Nothing to do for one process.
  absl::Status StageShard(const std::filesystem::path& checkpoint_dir);

  // The checkpoint piece "optimizer" of a run checkpointing into `checkpoint_dir`; Save (rank
  // 0's, or one process's) takes the staged shards; Load reads tensors onto `device`. DataLoss
  // when the saved shards do not fit this model or optimizer (naming the file or parameter).
  std::unique_ptr<Stateful> State(const std::filesystem::path& checkpoint_dir,
                                  const c10::Device& device);

 private:
  ShardedOptimizer(const v1::TrainConfig& config, std::vector<NamedParameter> parameters,
                   ProcessGroup* group, std::vector<int> owners);
  class Piece;
  absl::Status WriteShard(const std::filesystem::path& staging);

  const v1::TrainConfig config_;
  const std::vector<NamedParameter> parameters_;
  ProcessGroup* const group_;
  const int rank_;
  const int world_size_;
  const std::vector<int> owners_;  // per parameter
  std::unique_ptr<torch::optim::Optimizer> local_;
};

}  // namespace ablate::train::dist

#endif  // ABLATE_TRAINER_LIB_DIST_ZERO_H_
