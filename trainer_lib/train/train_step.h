// One optimizer step, written as the algorithm reads:
//   zero grad -> for each micro-batch: forward, loss, backward -> clip -> optimizer step
// and the loss of an evaluation batch. The pieces it calls hold the complexity:
//   - gradient accumulation: the batch's micro-batches each add their summed loss divided by
//     the batch's real (non-ignored) token count, so the gradients are those of the batch's
//     mean loss whatever micro_batch_size is (as llm.c and torchtitan count tokens);
//   - data parallelism (given a ProcessGroup): each rank runs its own rows of the global
//     batch; the real token count is summed over ranks first, so each rank's loss is its share
//     of the global mean, and the gradients, summed over ranks by a GradientSync during the
//     last micro-batch's backward pass (dist/grad_sync.h), are the global batch's. Clipping,
//     the non-finite check and the update then see the same numbers on every rank;
//   - the loss: ChunkedCrossEntropySum over the model's final hidden states, so the logits are
//     never held whole;
//   - precision: "bf16" runs the forward pass under autocast (matrix products in bf16,
//     reductions in fp32) and the loss's products in bf16; weights, gradients and optimizer
//     state stay fp32;
//   - a non-finite step under nonfinite "skip": the update is left out, which needs one
//     device-to-host copy of a flag per step in that mode only (whether to update must be
//     known before updating). Under "fail" nothing here waits for the device; the loop watches
//     the results with a NonFiniteWatch.
//
// Thread-safety: one thread at a time, like the model and optimizer it borrows.
#ifndef ABLATE_TRAINER_LIB_TRAIN_TRAIN_STEP_H_
#define ABLATE_TRAINER_LIB_TRAIN_TRAIN_STEP_H_

#include <memory>
#include <vector>

#include <torch/optim/optimizer.h>

#include "ablate/v1/config.pb.h"
#include "trainer_lib/dist/grad_sync.h"
#include "trainer_lib/dist/process_group.h"
#include "trainer_lib/dist/zero.h"
#include "trainer_lib/model/qwen3.h"

namespace ablate::train {

class TrainStep {
 public:
  // 0-d tensors on the model's device; reading one waits for the device, so the loop reads
  // them only when it logs.
  struct Result {
    torch::Tensor loss;       // fp32 mean cross-entropy over the batch's real tokens
    torch::Tensor grad_norm;  // fp32 global L2 norm of the gradients, before clipping
    bool skipped = false;     // nonfinite "skip" and the loss or gradient was not finite
  };

  // Borrows `model` and `optimizer`, which must outlive it. `config` has been through
  // WithLoopDefaults; uses its grad_clip (0: no clipping), precision, micro_batch_size,
  // loss_chunk_tokens, nonfinite and grad_bucket_mb. Turns the model's activation checkpointing on or off as
  // config.activation_checkpointing says. With `group` (borrowed; null for one process),
  // gradients and the loss are summed over its ranks. With `sharded` (borrowed), `optimizer`
  // is its local() share and every update is followed by its BroadcastUpdated.
  TrainStep(Qwen3Impl& model, torch::optim::Optimizer& optimizer, const v1::TrainConfig& config,
            dist::ProcessGroup* group = nullptr, dist::ShardedOptimizer* sharded = nullptr);

  // One optimizer step at learning rate `lr`. inputs, targets: [B, T] int64 on the model's
  // device, B a multiple of micro_batch_size; targets may hold kIgnoreIndex. With a group,
  // these are this rank's rows of the global batch, and every rank calls Run together.
  Result Run(const torch::Tensor& inputs, const torch::Tensor& targets, double lr);

  // Mean cross-entropy of a batch over its real tokens, without gradients, in eval mode.
  double EvalLoss(const torch::Tensor& inputs, const torch::Tensor& targets);

 private:
  // Summed cross-entropy of a (micro-)batch under the precision policy.
  torch::Tensor LossSum(const torch::Tensor& inputs, const torch::Tensor& targets);

  Qwen3Impl& model_;
  torch::optim::Optimizer& optimizer_;
  const std::vector<torch::Tensor> parameters_;
  const double grad_clip_;
  const bool bf16_;
  const int64_t micro_batch_size_;
  const int64_t loss_chunk_tokens_;
  const bool skip_nonfinite_;
  dist::ProcessGroup* const group_;                 // null: one process
  const std::unique_ptr<dist::GradientSync> sync_;  // with group_
  dist::ShardedOptimizer* const sharded_;           // null: optimizer_ updates everything
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_TRAIN_STEP_H_
