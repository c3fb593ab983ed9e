// Optimizers by the name a sweep gives them (TrainConfig.optimizer), built over a model's
// parameters. Weight decay applies to matrices only: norm weights and biases (1-D parameters)
// are left undecayed, as in GPT-2 and llm.c. A checkpoint holds an optimizer through
// OptimizerState, the one place that knows how its state is stored.
//
// Thread-safety: the factory is safe from any thread; an optimizer is used by one thread.
#ifndef ABLATE_TRAINER_LIB_OPTIM_OPTIMIZER_H_
#define ABLATE_TRAINER_LIB_OPTIM_OPTIMIZER_H_

#include <memory>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "trainer_lib/state/stateful.h"

namespace ablate::train {

// "adamw": torch::optim::AdamW with lr = config.learning_rate, weight_decay, and
// optimizer_args beta1 (default 0.9), beta2 (0.95) and eps (1e-8); other optimizer_args are
// left to the optimizers that take them, since one sweep may set them for several. Other names
// from the catalog fail with Unimplemented ("optimizer soap is not implemented yet"), unknown
// names with InvalidArgument.
absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> MakeOptimizer(
    const v1::TrainConfig& config, torch::nn::Module& model);

// The checkpoint piece "optimizer" of `optimizer`, which it borrows: torch's archive of its
// state (moments, step counts) in optimizer.pt, loaded with tensors on `device`. It loads only
// into an optimizer MakeOptimizer built from the same config over the same model; anything
// else fails with DataLoss rather than a LibTorch exception.
std::unique_ptr<Stateful> OptimizerState(torch::optim::Optimizer& optimizer,
                                         const torch::Device& device);

// Sets the learning rate of every parameter group, whatever the optimizer.
void SetLearningRate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_OPTIMIZER_H_
