#include "trainer_lib/optim/adamw.h"

#include <cmath>
#include <map>

#include <ATen/ops/_fused_adamw.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

// torch.optim.AdamW's _single_tensor_adamw for one parameter, in its order of operations.
void UpdateOne(torch::Tensor& p, const torch::Tensor& grad, AdamWParamState& s,
               const AdamWOptions& o, double lr) {
  const auto [beta1, beta2] = o.betas();
  p.mul_(1 - lr * o.weight_decay());
  s.exp_avg().lerp_(grad, 1 - beta1);
  s.exp_avg_sq().mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  const double step = static_cast<double>(s.step());
  const double bias_correction1 = 1 - std::pow(beta1, step);
  const double bias_correction2 = 1 - std::pow(beta2, step);
  const double step_size = lr / bias_correction1;
  const torch::Tensor denom =
      (s.exp_avg_sq().sqrt() / std::sqrt(bias_correction2)).add_(o.eps());
  p.addcdiv_(s.exp_avg(), denom, -step_size);
}

}  // namespace

void AdamWGroupStep(
    torch::optim::OptimizerParamGroup& group,
    ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>>& state,
    double lr_scale) {
  const auto& o = static_cast<const AdamWOptions&>(group.options());
  const double lr = o.lr() * lr_scale;
  std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs;
  std::vector<int64_t> steps;
  for (torch::Tensor& p : group.params()) {
    if (!p.grad().defined()) continue;
    auto& slot = state[p.unsafeGetTensorImpl()];
    if (slot == nullptr) {
      auto fresh = std::make_unique<AdamWParamState>();
      fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      slot = std::move(fresh);
    }
    auto& s = static_cast<AdamWParamState&>(*slot);
    s.step(s.step() + 1);
    if (!p.is_cuda()) {
      UpdateOne(p, p.grad(), s, o, lr);
      continue;
    }
    params.push_back(p);
    grads.push_back(p.grad());
    exp_avgs.push_back(s.exp_avg());
    exp_avg_sqs.push_back(s.exp_avg_sq());
    steps.push_back(s.step());
  }
  if (params.empty()) return;
  // The fused kernel reads each parameter's step from a float tensor on its device; parameters
  // that share a step (all of them, once every one has had a gradient) share one tensor.
  std::map<int64_t, torch::Tensor> step_tensors;
  std::vector<torch::Tensor> state_steps;
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor& t = step_tensors[steps[i]];
    if (!t.defined()) {
      t = torch::full({}, static_cast<double>(steps[i]),
                      torch::TensorOptions().dtype(torch::kFloat32).device(params[i].device()));
    }
    state_steps.push_back(t);
  }
  const auto [beta1, beta2] = o.betas();
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, state_steps,
                    lr, beta1, beta2, o.weight_decay(), o.eps(), /*amsgrad=*/false,
                    /*maximize=*/false);
}

torch::Tensor AdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (torch::optim::OptimizerParamGroup& group : param_groups_) AdamWGroupStep(group, state_);
  return loss;
}

}  // namespace ablate::train
