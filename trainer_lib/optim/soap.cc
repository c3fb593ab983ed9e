#include "trainer_lib/optim/soap.h"

#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include <torch/torch.h>

#include "trainer_lib/optim/group_options.h"
#include "trainer_lib/optim/kronecker.h"
#include "trainer_lib/optim/tensor_list_archive.h"

namespace ablate::train {

void SoapOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta1);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta2);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(shampoo_beta);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(precondition_frequency);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(max_precond_dim);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(precondition_1d);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(normalize_grads);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(correct_bias);
}

void SoapOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta1);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta2);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, shampoo_beta);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, precondition_frequency);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, max_precond_dim);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, precondition_1d);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, normalize_grads);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, correct_bias);
}

void SoapParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
  WriteTensorList(archive, "factor", factors);
  WriteTensorList(archive, "basis", bases);
}

void SoapParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
  factors = ReadTensorList(archive, "factor");
  bases = ReadTensorList(archive, "basis");
}

double ShampooBeta(const SoapOptions& o) {
  return o.shampoo_beta() < 0 ? o.beta2() : o.shampoo_beta();
}

torch::Tensor SoapDirection(const torch::Tensor& grad, const std::vector<torch::Tensor>& bases,
                            const SoapOptions& o, torch::Tensor& exp_avg,
                            torch::Tensor& exp_avg_sq) {
  const torch::Tensor grad_projected = Project(grad, bases, /*backward=*/false);
  exp_avg.lerp_(grad, 1.0 - o.beta1());
  exp_avg_sq.lerp_(grad_projected.square(), 1.0 - o.beta2());
  const torch::Tensor denom = exp_avg_sq.sqrt().add_(o.eps());
  const torch::Tensor exp_avg_projected = Project(exp_avg, bases, false);
  torch::Tensor update = Project(exp_avg_projected / denom, bases, /*backward=*/true);
  if (o.normalize_grads()) update.div_(update.square().mean().sqrt_().add_(o.eps()));
  return update;
}

double SoapStepSize(const SoapOptions& o, int64_t t) {
  double step_size = o.lr();
  if (o.correct_bias()) {
    const double bias1 = 1.0 - std::pow(o.beta1(), static_cast<double>(t));
    const double bias2_sqrt = std::sqrt(1.0 - std::pow(o.beta2(), static_cast<double>(t)));
    step_size *= bias2_sqrt / bias1;
  }
  return step_size;
}

Soap::Soap(const std::vector<torch::optim::OptimizerParamGroup>& groups, SoapOptions defaults)
    : Optimizer(groups, std::make_unique<SoapOptions>(defaults)) {
  TORCH_CHECK(defaults.precondition_frequency() >= 1, "soap: precondition_frequency < 1");
  KeepGroupOptions(groups, *this);
}

torch::Tensor Soap::step(LossClosure closure) {
  TORCH_CHECK(!closure, "soap: a closure is not supported");
  torch::NoGradGuard no_grad;
  std::vector<Refresh> eigh_work, power_work;
  for (torch::optim::OptimizerParamGroup& group : param_groups_) {
    const auto& o = static_cast<const SoapOptions&>(group.options());
    const double shampoo_beta = ShampooBeta(o);
    for (torch::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = state_[p.unsafeGetTensorImpl()];
      if (!slot) {
        auto fresh = std::make_unique<SoapParamState>();
        fresh->exp_avg(torch::zeros_like(p, torch::kFloat32));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::kFloat32));
        fresh->factors = ZeroFactors(p.sizes(), p.options(), o.max_precond_dim(),
                                     o.precondition_1d());
        fresh->bases.resize(fresh->factors.size());
        slot = std::move(fresh);
      }
      auto& s = static_cast<SoapParamState&>(*slot);
      const torch::Tensor grad = p.grad().to(torch::kFloat32);
      const int64_t t = s.step();
      s.step(t + 1);
      if (t == 0) {
        AccumulateFactors(grad, shampoo_beta, s.factors);
        eigh_work.push_back({&s.factors, &s.bases, nullptr});
        continue;
      }
      p.add_(SoapDirection(grad, s.bases, o, s.exp_avg(), s.exp_avg_sq()), -SoapStepSize(o, t));
      if (o.weight_decay() != 0.0) p.mul_(1.0 - o.weight_decay() * o.lr());
      AccumulateFactors(grad, shampoo_beta, s.factors);
      if (t % o.precondition_frequency() == 0) {
        power_work.push_back({&s.factors, &s.bases, &s.exp_avg_sq()});
      }
    }
  }
  EighBases(eigh_work);
  PowerIterationBases(power_work);
  return {};
}

void Soap::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<SoapParamState, SoapOptions>(archive, *this);
}

void Soap::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<SoapParamState, SoapOptions>(archive, *this);
}

}  // namespace ablate::train
