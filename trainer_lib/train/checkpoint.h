// A run's checkpoint: model weights, optimizer state and the step, in one folder a job names
// (JobSpec.checkpoint_dir), which keeps only the latest:
//   <dir>/step-00000040/checkpoint.pt   a torch archive with "model", "optimizer" and "step"
// Nothing else needs saving: batches and the learning rate are functions of the step.
//
// Invariants:
//  1. A folder step-N is complete. It is written as <dir>/.tmp-step-N, flushed to disk and
//     renamed into place, so a crash at any moment leaves the previous checkpoint or the new
//     one, never a torn one.
//  2. After a save, no other step-* or .tmp-* folder remains.
// One process writes a folder at a time (the job's single trainer); not thread-safe.
#ifndef ABLATE_TRAINER_LIB_TRAIN_CHECKPOINT_H_
#define ABLATE_TRAINER_LIB_TRAIN_CHECKPOINT_H_

#include <cstdint>
#include <filesystem>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "absl/status/statusor.h"

namespace ablate::train {

// Writes the checkpoint of `step` and removes older ones; keeps the one already there if `dir`
// holds this step's. Returns its folder. Internal with the path and the OS error when the disk
// refuses.
absl::StatusOr<std::filesystem::path> SaveCheckpoint(const std::filesystem::path& dir,
                                                     int64_t step, torch::nn::Module& model,
                                                     torch::optim::Optimizer& optimizer);

// Loads the newest checkpoint under `dir` into `model` and `optimizer`, built as when it was
// saved, with tensors placed on `device`. Returns its step, or 0 when `dir` holds none (or
// does not exist). DataLoss names the file when it does not load into this model.
absl::StatusOr<int64_t> LoadLatestCheckpoint(const std::filesystem::path& dir,
                                             torch::nn::Module& model,
                                             torch::optim::Optimizer& optimizer,
                                             const torch::Device& device);

// Loads only the model's weights, on the CPU, from the checkpoint folder `dir` (a step-N
// folder) or from the newest one under `dir` (a job's checkpoint_dir). Returns its step.
// NotFound when there is none; DataLoss naming the file when it does not load into `model`.
absl::StatusOr<int64_t> LoadCheckpointModel(const std::filesystem::path& dir,
                                            torch::nn::Module& model);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_CHECKPOINT_H_
