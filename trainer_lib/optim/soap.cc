#include "trainer_lib/optim/soap.h"

#include <algorithm>
#include <cmath>
#include <map>
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
  std::vector<torch::Tensor> stacked;
  for (const torch::Tensor& q : bases) stacked.push_back(q.defined() ? q.unsqueeze(0) : q);
  return SoapDirectionBatch(grad.unsqueeze(0), stacked, o, {exp_avg}, {exp_avg_sq}).squeeze(0);
}

torch::Tensor SoapDirectionBatch(const torch::Tensor& grads,
                                 const std::vector<torch::Tensor>& bases, const SoapOptions& o,
                                 const std::vector<torch::Tensor>& exp_avgs,
                                 const std::vector<torch::Tensor>& exp_avg_sqs) {
  const torch::Tensor grads_projected = ProjectBatch(grads, bases, /*backward=*/false);
  torch::_foreach_lerp_(exp_avgs, grads.unbind(0), 1.0 - o.beta1());
  torch::_foreach_lerp_(exp_avg_sqs, grads_projected.square().unbind(0), 1.0 - o.beta2());
  const torch::Tensor denom = torch::stack(exp_avg_sqs).sqrt_().add_(o.eps());
  const torch::Tensor exp_avg_projected = ProjectBatch(torch::stack(exp_avgs), bases, false);
  torch::Tensor update = ProjectBatch(exp_avg_projected / denom, bases, /*backward=*/true);
  if (o.normalize_grads()) {
    std::vector<int64_t> dims;
    for (int64_t d = 1; d < update.dim(); ++d) dims.push_back(d);
    update.div_(update.square().mean(dims, /*keepdim=*/true).sqrt_().add_(o.eps()));
  }
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

namespace {

using Moving = std::vector<std::pair<torch::Tensor, SoapParamState*>>;

// Elements (parameter and bases) of one batch: the stacked copies of a batch stay within about
// a GiB of float32 each, while batches stay large enough to fill a GPU's matmuls.
constexpr int64_t kMaxBatchElements = int64_t{1} << 28;

// `run` (same-shaped parameters) cut into consecutive batches of at most kMaxBatchElements.
std::vector<Moving> Batches(const Moving& run) {
  int64_t per_parameter = run.front().first.numel();
  for (const torch::Tensor& q : run.front().second->bases) {
    if (q.defined()) per_parameter += q.numel();
  }
  const auto size = static_cast<size_t>(std::max<int64_t>(1, kMaxBatchElements / per_parameter));
  std::vector<Moving> batches;
  for (size_t first = 0; first < run.size(); first += size) {
    const size_t last = std::min(run.size(), first + size);
    batches.emplace_back(run.begin() + static_cast<std::ptrdiff_t>(first),
                         run.begin() + static_cast<std::ptrdiff_t>(last));
  }
  return batches;
}

// One step of a batch of same-shaped parameters past their first step; queues the refreshes
// due after it in `power_work`.
void StepBatch(const Moving& batch, const SoapOptions& o, std::vector<Refresh>& power_work) {
  std::vector<torch::Tensor> grads, exp_avgs, exp_avg_sqs;
  std::vector<std::vector<torch::Tensor>*> factors;
  for (const auto& [p, s] : batch) {
    grads.push_back(p.grad().to(torch::kFloat32));
    exp_avgs.push_back(s->exp_avg());
    exp_avg_sqs.push_back(s->exp_avg_sq());
    factors.push_back(&s->factors);
  }
  // Same shape and options, so the same dimensions are preconditioned in every member.
  std::vector<torch::Tensor> bases;
  for (size_t d = 0; d < batch.front().second->bases.size(); ++d) {
    std::vector<torch::Tensor> of_dim;
    for (const auto& [p, s] : batch) of_dim.push_back(s->bases[d]);
    bases.push_back(of_dim.front().defined() ? torch::stack(of_dim) : torch::Tensor());
  }
  const torch::Tensor stacked_grads = torch::stack(grads);
  const torch::Tensor directions =
      SoapDirectionBatch(stacked_grads, bases, o, exp_avgs, exp_avg_sqs);
  for (size_t i = 0; i < batch.size(); ++i) {
    const torch::Tensor& p = batch[i].first;
    SoapParamState& s = *batch[i].second;
    const int64_t t = s.step() - 1;
    p.add_(directions[static_cast<int64_t>(i)], -SoapStepSize(o, t));
    if (o.weight_decay() != 0.0) p.mul_(1.0 - o.weight_decay() * o.lr());
    if (t % o.precondition_frequency() == 0) {
      power_work.push_back({&s.factors, &s.bases, &s.exp_avg_sq()});
    }
  }
  AccumulateFactors(stacked_grads, ShampooBeta(o), factors);
}

}  // namespace

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
    // Parameters that move this step, by shape: each shape's run takes one batched direction.
    std::map<std::vector<int64_t>, Moving> moving;
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
      const int64_t t = s.step();
      s.step(t + 1);
      if (t == 0) {
        AccumulateFactors(p.grad().to(torch::kFloat32), shampoo_beta, s.factors);
        eigh_work.push_back({&s.factors, &s.bases, nullptr});
        continue;
      }
      moving[p.sizes().vec()].emplace_back(p, &s);
    }
    for (const auto& [shape, run] : moving) {
      for (const Moving& batch : Batches(run)) StepBatch(batch, o, power_work);
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
