#include "trainer_lib/train/train_step.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "trainer_lib/optim/optimizer.h"
#include "trainer_lib/train/cross_entropy.h"

namespace ablate::train {
namespace {

// Autocast to bf16 on one device type for the guard's lifetime, when enabled.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, bool enabled) : device_(device), enabled_(enabled) {
    if (!enabled_) return;
    at::autocast::set_autocast_dtype(device_, at::kBFloat16);
    at::autocast::set_autocast_enabled(device_, true);
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    at::autocast::set_autocast_enabled(device_, false);
    at::autocast::clear_cache();  // bf16 copies of the weights, stale after the update
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_;
};

// Scales the gradients so that their global L2 norm is at most max_norm (0: leaves them) and
// returns the norm before scaling. Unlike torch::nn::utils::clip_grad_norm_, it never copies
// the norm to the host, so a GPU step does not wait here. Multi-tensor kernels, as
// clip_grad_norm_'s foreach path: a few launches for all the gradients instead of a norm and a
// product per parameter (620 for Qwen3-0.6B's 310).
torch::Tensor ClipGradNorm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : parameters) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  torch::Tensor total = torch::stack(at::_foreach_norm(grads, 2, torch::kFloat32)).norm();
  if (max_norm > 0) at::_foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp_max(1.0));
  return total;
}

// Every parameter's gradient, not only those the (possibly sharded) optimizer steps, set to
// none, as torch's zero_grad does by default.
void ClearGradients(const std::vector<torch::Tensor>& parameters) {
  for (const torch::Tensor& p : parameters) {
    if (p.grad().defined()) const_cast<torch::Tensor&>(p).mutable_grad().reset();
  }
}

// True when both 0-d tensors are finite. Reads them: waits for the device.
bool AllFinite(const torch::Tensor& loss, const torch::Tensor& grad_norm) {
  return (torch::isfinite(loss) & torch::isfinite(grad_norm)).item<bool>();
}

// The number of targets that count, as a 0-d fp32 tensor of at least 1.
torch::Tensor RealTokens(const torch::Tensor& targets) {
  return (targets != kIgnoreIndex).sum().clamp_min(1).to(torch::kFloat32);
}

}  // namespace

TrainStep::TrainStep(Qwen3Impl& model, torch::optim::Optimizer& optimizer,
                     const v1::TrainConfig& config, dist::ProcessGroup* group,
                     dist::ShardedOptimizer* sharded)
    : model_(model),
      optimizer_(optimizer),
      parameters_(model.parameters()),
      grad_clip_(config.grad_clip()),
      bf16_(config.precision() == "bf16"),
      micro_batch_size_(config.micro_batch_size()),
      loss_chunk_tokens_(config.loss_chunk_tokens()),
      skip_nonfinite_(config.nonfinite() == "skip"),
      group_(group),
      sync_(group == nullptr ? nullptr
                             : std::make_unique<dist::GradientSync>(
                                   *group, parameters_, int64_t{config.grad_bucket_mb()} << 20)),
      sharded_(sharded) {
  model_.set_activation_checkpointing(config.activation_checkpointing(),
                                      config.checkpoint_offload_layers());
}

TrainStep::Result TrainStep::Run(const torch::Tensor& inputs, const torch::Tensor& targets,
                                 double lr) {
  ClearGradients(parameters_);
  torch::Tensor tokens = (targets != kIgnoreIndex).sum().to(torch::kFloat32);
  if (group_ != nullptr) group_->AllReduceSum(tokens).Wait();  // the global batch's
  tokens = tokens.clamp_min(1);
  torch::Tensor loss = torch::zeros({}, inputs.options().dtype(torch::kFloat32));
  for (int64_t start = 0; start < inputs.size(0); start += micro_batch_size_) {
    // Only the last micro-batch's backward exchanges gradients; earlier ones accumulate.
    if (sync_ && start + micro_batch_size_ >= inputs.size(0)) sync_->Arm();
    const torch::Tensor micro_loss =
        LossSum(inputs.narrow(0, start, micro_batch_size_),
                targets.narrow(0, start, micro_batch_size_)) / tokens;
    micro_loss.backward();
    loss += micro_loss.detach();
  }
  if (sync_) {
    sync_->Finish();
    group_->AllReduceSum(loss).Wait();
  }
  torch::Tensor grad_norm = ClipGradNorm(parameters_, grad_clip_);
  if (skip_nonfinite_ && !AllFinite(loss, grad_norm)) {
    ClearGradients(parameters_);
    return {loss, grad_norm, /*skipped=*/true};
  }
  SetLearningRate(optimizer_, lr);
  optimizer_.step();
  if (sharded_ != nullptr) sharded_->BroadcastUpdated();
  return {loss, grad_norm, /*skipped=*/false};
}

double TrainStep::EvalLoss(const torch::Tensor& inputs, const torch::Tensor& targets) {
  torch::NoGradGuard no_grad;
  model_.eval();
  const double loss = (LossSum(inputs, targets) / RealTokens(targets)).item<double>();
  model_.train();
  return loss;
}

torch::Tensor TrainStep::LossSum(const torch::Tensor& inputs, const torch::Tensor& targets) {
  AutocastGuard autocast(inputs.device().type(), bf16_);
  const torch::Tensor hidden = model_.hidden_states(inputs);  // [B, T, H]
  return ChunkedCrossEntropySum(hidden.flatten(0, 1), model_.output_weight(), targets.flatten(),
                                loss_chunk_tokens_, bf16_ ? torch::kBFloat16 : torch::kFloat32);
}

}  // namespace ablate::train
