#include "trainer_lib/train/train_step.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "trainer_lib/optim/optimizer.h"

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
// the norm to the host, so a GPU step does not wait here.
torch::Tensor ClipGradNorm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> norms;
  for (const torch::Tensor& p : parameters) {
    if (p.grad().defined()) {
      norms.push_back(torch::linalg_vector_norm(p.grad(), 2, std::nullopt, false, torch::kFloat32));
    }
  }
  torch::Tensor total = torch::stack(norms).norm();
  if (max_norm > 0) {
    torch::Tensor scale = (max_norm / (total + 1e-6)).clamp_max(1.0);
    for (const torch::Tensor& p : parameters) {
      if (p.grad().defined()) p.grad().mul_(scale);
    }
  }
  return total;
}

}  // namespace

TrainStep::TrainStep(Qwen3Impl& model, torch::optim::Optimizer& optimizer,
                     const v1::TrainConfig& config)
    : model_(model),
      optimizer_(optimizer),
      parameters_(model.parameters()),
      grad_clip_(config.grad_clip()),
      bf16_(config.precision() == "bf16") {}

TrainStep::Result TrainStep::Run(const torch::Tensor& inputs, const torch::Tensor& targets,
                                 double lr) {
  optimizer_.zero_grad();
  torch::Tensor loss = Loss(inputs, targets);
  loss.backward();
  torch::Tensor grad_norm = ClipGradNorm(parameters_, grad_clip_);
  SetLearningRate(optimizer_, lr);
  optimizer_.step();
  return {loss.detach(), grad_norm};
}

double TrainStep::EvalLoss(const torch::Tensor& inputs, const torch::Tensor& targets) {
  torch::NoGradGuard no_grad;
  model_.eval();
  const double loss = Loss(inputs, targets).item<double>();
  model_.train();
  return loss;
}

torch::Tensor TrainStep::Loss(const torch::Tensor& inputs, const torch::Tensor& targets) {
  AutocastGuard autocast(inputs.device().type(), bf16_);
  torch::Tensor logits = model_.forward(inputs);  // [B, T, V]
  return torch::nn::functional::cross_entropy(logits.flatten(0, 1).to(torch::kFloat32),
                                              targets.flatten());
}

}  // namespace ablate::train
