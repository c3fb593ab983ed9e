// One optimizer step, written as the algorithm reads:
//   zero grad -> forward -> cross-entropy -> backward -> clip -> set lr -> optimizer step
// and the loss of an evaluation batch. The step's precision policy lives here: "bf16" runs the
// forward pass and the loss under autocast (matrix products in bf16, reductions and the loss
// in fp32) while weights, gradients and optimizer state stay fp32.
//
// Thread-safety: one thread at a time, like the model and optimizer it borrows.
#ifndef ABLATE_TRAINER_LIB_TRAIN_TRAIN_STEP_H_
#define ABLATE_TRAINER_LIB_TRAIN_TRAIN_STEP_H_

#include <vector>

#include <torch/optim/optimizer.h>

#include "ablate/v1/config.pb.h"
#include "trainer_lib/model/qwen3.h"

namespace ablate::train {

class TrainStep {
 public:
  // 0-d tensors on the model's device; reading one waits for the device, so the loop reads
  // them only when it logs.
  struct Result {
    torch::Tensor loss;       // mean cross-entropy of the batch, before the update
    torch::Tensor grad_norm;  // global L2 norm of the gradients, before clipping
  };

  // Borrows `model` and `optimizer`, which must outlive it. Uses config.grad_clip() (0: no
  // clipping) and config.precision().
  TrainStep(Qwen3Impl& model, torch::optim::Optimizer& optimizer, const v1::TrainConfig& config);

  // inputs, targets: [B, T] int64 on the model's device.
  Result Run(const torch::Tensor& inputs, const torch::Tensor& targets, double lr);

  // Mean cross-entropy without gradients.
  double EvalLoss(const torch::Tensor& inputs, const torch::Tensor& targets);

 private:
  torch::Tensor Loss(const torch::Tensor& inputs, const torch::Tensor& targets);

  Qwen3Impl& model_;
  torch::optim::Optimizer& optimizer_;
  const std::vector<torch::Tensor> parameters_;
  const double grad_clip_;
  const bool bf16_;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_TRAIN_STEP_H_
