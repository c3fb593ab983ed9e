// The checkpoint pieces of a run besides the optimizer (dist/zero.h, ShardedOptimizer::State):
//   "config"    config.json and model.json: the TrainConfig and ModelConfig that wrote the
//               checkpoint. Loading it into a run with another configuration is refused,
//               naming each field that differs, before any other piece loads: a different
//               model always, other settings unless allow_config_change. Settings that only
//               change bookkeeping or memory use may differ: log_every, eval_every,
//               eval_batches, checkpoint_every, keep_checkpoints, cpu_threads, gpus,
//               cpu_ranks, micro_batch_size, activation_checkpointing, loss_chunk_tokens and
//               allow_config_change itself.
//   "model"     model.pt: every parameter and buffer by its dotted name. Loading checks names
//               and shapes first, so a mismatch reads "checkpoint model.pt: layers.0.mlp...
//               has shape [192, 64], this model's is [384, 128]", not a LibTorch error.
//   counters    <name>.txt: named integers ("step 40"), e.g. the run's progress or the data
//               position.
//   "rng"       rng.pt: the state of torch's default generators (CPU, and the device's).
// Each borrows what it saves; use from one thread.
#ifndef ABLATE_TRAINER_LIB_TRAIN_RUN_STATE_H_
#define ABLATE_TRAINER_LIB_TRAIN_RUN_STATE_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "trainer_lib/state/stateful.h"

namespace ablate::train {

std::unique_ptr<Stateful> ConfigRecord(const v1::TrainConfig& config,
                                       const v1::ModelConfig& model);

// The ModelConfig the "config" piece saved in checkpoint folder `dir`: what export builds when
// it is not told the model. NotFound without model.json (a checkpoint of an older Ablate),
// DataLoss when it does not parse.
absl::StatusOr<v1::ModelConfig> SavedModelConfig(const std::filesystem::path& dir);
// The TrainConfig the "config" piece saved in checkpoint folder `dir` (its config.json).
// NotFound without it, DataLoss when it does not parse.
absl::StatusOr<v1::TrainConfig> SavedTrainConfig(const std::filesystem::path& dir);

std::unique_ptr<Stateful> ModelState(torch::nn::Module& model, const c10::Device& device);

std::unique_ptr<Stateful> CounterState(std::string name,
                                       std::vector<std::pair<std::string, int64_t*>> counters);

std::unique_ptr<Stateful> RngState(const c10::Device& device);

// The settings that differ between two TrainConfigs, as "learning_rate 0.01 -> 0.02" items,
// leaving out those ConfigRecord lets change. Empty when they agree.
std::vector<std::string> ConfigDifferences(const v1::TrainConfig& saved,
                                           const v1::TrainConfig& now);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_RUN_STATE_H_
