#include "trainer_lib/optim/shampoo.h"

#include <cmath>
#include <map>
#include <memory>
#include <utility>

#include <torch/torch.h>

#include "common/optimizer_state.h"
#include "trainer_lib/optim/group_options.h"
#include "trainer_lib/optim/kronecker.h"
#include "trainer_lib/optim/tensor_list_archive.h"

namespace ablate::train {
namespace {

// F_d for each dimension of a preconditioned parameter (ShampooPreconditions, the reference's
// skip rules), starting at eps I; none otherwise.
std::vector<torch::Tensor> InitialFactors(const torch::Tensor& p, const ShampooOptions& o) {
  std::vector<torch::Tensor> factors;
  if (!ShampooPreconditions(p.sizes(), o.max_precond_dim())) return factors;
  for (int64_t n : p.sizes()) factors.push_back(o.matrix_eps() * torch::eye(n, p.options()));
  return factors;
}

// The state's dtype: float64 for float64 parameters, as the reference, else float32.
torch::ScalarType StateDtype(const torch::Tensor& p) {
  return p.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

}  // namespace

void ShampooOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta1);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta2);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(start_preconditioning_step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(precondition_frequency);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(max_precond_dim);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(nesterov);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(diagonal_eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(matrix_eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(moving_average_for_momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(graft_bias_correction);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(use_svd);
}

void ShampooOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta1);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta2);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, start_preconditioning_step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, precondition_frequency);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, max_precond_dim);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, nesterov);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, diagonal_eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, matrix_eps);
  // Checkpoints from before these two options lack them: they keep the reference's behaviour.
  c10::IValue flag;
  moving_average_for_momentum(archive.try_read("moving_average_for_momentum", flag) &&
                              flag.toBool());
  graft_bias_correction(archive.try_read("graft_bias_correction", flag) && flag.toBool());
  // Those from before use_svd took every root by eigh.
  use_svd(!archive.try_read("use_svd", flag) || flag.toBool());
}

void ShampooParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(graft_sq);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(graft_momentum);
  WriteTensorList(archive, "factor", factors);
  WriteTensorList(archive, "root", roots);
}

void ShampooParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, graft_sq);
  torch::Tensor graft_momentum_in;
  if (archive.try_read("graft_momentum", graft_momentum_in)) graft_momentum(graft_momentum_in);
  factors = ReadTensorList(archive, "factor");
  roots = ReadTensorList(archive, "root");
}

Shampoo::Shampoo(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                 ShampooOptions defaults)
    : Optimizer(groups, std::make_unique<ShampooOptions>(defaults)) {
  TORCH_CHECK(defaults.precondition_frequency() >= 1, "shampoo: precondition_frequency < 1");
  KeepGroupOptions(groups, *this);
}

torch::Tensor Shampoo::step(LossClosure closure) {
  TORCH_CHECK(!closure, "shampoo: a closure is not supported");
  torch::NoGradGuard no_grad;
  // Two passes, so that the roots of every parameter due this step are computed together:
  // statistics and refresh first, then the updates that read the new roots.
  struct Pending {
    torch::Tensor p;
    ShampooParamState* s;
    const ShampooOptions* o;
  };
  std::vector<Pending> pending;
  std::vector<Refresh> eigh_due;
  std::map<double, std::vector<Refresh>> newton_due;  // by matrix_eps, the Newton ridge
  for (torch::optim::OptimizerParamGroup& group : param_groups_) {
    const auto& o = static_cast<const ShampooOptions&>(group.options());
    for (torch::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = state_[p.unsafeGetTensorImpl()];
      const torch::ScalarType state_dtype = StateDtype(p);
      if (!slot) {
        auto fresh = std::make_unique<ShampooParamState>();
        fresh->momentum(torch::zeros_like(p, state_dtype));
        fresh->graft_sq(torch::zeros_like(p, state_dtype));
        fresh->graft_momentum(torch::zeros_like(p, state_dtype));
        fresh->factors = InitialFactors(p.to(state_dtype), o);
        for (const torch::Tensor& f : fresh->factors) {
          fresh->roots.push_back(torch::eye(f.size(0), f.options()));
        }
        slot = std::move(fresh);
      }
      auto& s = static_cast<ShampooParamState&>(*slot);
      const int64_t t = s.step() + 1;
      s.step(t);
      const torch::Tensor grad = p.grad().to(state_dtype);
      s.graft_sq().mul_(o.beta2()).addcmul_(grad, grad, 1.0 - o.beta2());
      const double w2 = o.beta2() == 1.0 ? 1.0 : 1.0 - o.beta2();
      for (int64_t d = 0; d < static_cast<int64_t>(s.factors.size()); ++d) {
        std::vector<int64_t> others;
        for (int64_t e = 0; e < grad.dim(); ++e) {
          if (e != d) others.push_back(e);
        }
        s.factors[d].mul_(o.beta2()).add_(torch::tensordot(grad, grad, others, others), w2);
      }
      if (!s.factors.empty() && t % o.precondition_frequency() == 0) {
        (o.use_svd() ? eigh_due : newton_due[o.matrix_eps()])
            .push_back({&s.factors, &s.roots, nullptr});
      }
      pending.push_back({p, &s, &o});
    }
  }
  InverseRoots(eigh_due);
  for (const auto& [ridge, due] : newton_due) {
    NewtonRootOptions newton;
    newton.ridge_epsilon = ridge;
    NewtonInverseRoots(due, newton);
  }
  for (const Pending& item : pending) {
    ShampooParamState& s = *item.s;
    const ShampooOptions& o = *item.o;
    const torch::Tensor grad = item.p.grad().to(s.momentum().scalar_type());
    torch::Tensor rms = s.graft_sq().sqrt();
    if (o.graft_bias_correction() && o.beta2() < 1.0) {
      rms.div_(std::sqrt(1.0 - std::pow(o.beta2(), static_cast<double>(s.step()))));
    }
    const torch::Tensor graft = grad.div(rms.add_(o.diagonal_eps()));
    torch::Tensor shampoo = s.factors.empty() ? graft.clone() : Project(grad, s.roots, false);
    shampoo.mul_(torch::linalg_vector_norm(graft) /
                 (torch::linalg_vector_norm(shampoo) + 1e-16));
    if (o.weight_decay() != 0.0) item.p.mul_(1.0 - o.weight_decay() * o.lr());
    const double w = o.moving_average_for_momentum() ? 1.0 - o.beta1() : 1.0;
    s.momentum().mul_(o.beta1()).add_(shampoo, w);
    const bool preconditioned = s.step() >= o.start_preconditioning_step();
    torch::Tensor update = s.momentum();
    if (s.graft_momentum().defined()) {
      s.graft_momentum().mul_(o.beta1()).add_(graft, w);
      if (!preconditioned) update = s.graft_momentum();
    }
    if (o.nesterov()) update = update.mul(o.beta1()).add_(preconditioned ? shampoo : graft, w);
    item.p.add_(update.to(item.p.scalar_type()), -o.lr());
    if (preconditioned) s.graft_momentum(torch::Tensor());
  }
  return {};
}

void Shampoo::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<ShampooParamState, ShampooOptions>(archive, *this);
}

void Shampoo::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<ShampooParamState, ShampooOptions>(archive, *this);
}

}  // namespace ablate::train
