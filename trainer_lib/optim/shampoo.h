// Shampoo (Gupta, Koren and Singer 2018, arXiv:1802.09568) with layer-wise grafting (Agarwal
// et al. 2020, arXiv:2002.11803), as pytorch-optimizer 4.1.0's ScalableShampoo (a port of
// Anil et al.'s "Scalable Second Order Optimization", arXiv:2002.09018) computes it with
// use_svd as ours (true or false), graft_type RMSPROP, shape_interpretation off, no block
// partitioning and decoupled weight decay. For each step t = 1, 2, ...:
//   v <- beta2 v + (1 - beta2) G^2                                (the graft's RMSprop)
//   v_hat = v / (1 - beta2^t) with graft_bias_correction and beta2 < 1, else v
//   F_d <- beta2 F_d + (1 - beta2) G_(d) G_(d)^T for each dimension d   (F_d(0) = matrix_eps I)
//   every precondition_frequency-th step: P_d <- F_d^(-1/(2k)), k the preconditioned dims,
//     batched across parameters by size; P_d = I before the first one. With use_svd, by a
//     symmetric eigendecomposition (|lambda|^(-1/(2k)), the singular values the reference
//     takes); without, by the reference's coupled Newton iteration (matrix_roots.h) on
//     F_d + matrix_eps lambda_max(F_d) I, products only
//   g_graft = G / (sqrt(v_hat) + diagonal_eps);  g_shampoo = G ×_d P_d, rescaled to ||g_graft||
//     (divided by ||g_shampoo|| + 1e-16)
//   p <- p (1 - lr weight_decay)
//   m <- beta1 m + w g_shampoo;  m_graft <- beta1 m_graft + w g_graft
//   u = m (t >= start_preconditioning_step) or m_graft (before); with nesterov
//     u <- beta1 u + w g (g the same choice of g_shampoo or g_graft)
//   where w = 1 - beta1 with moving_average_for_momentum (an EMA, as Adam's), else 1 (a sum)
//   p <- p - lr u
// A parameter with a dimension above max_precond_dim, or of one dimension, is not
// preconditioned: g_shampoo = g_graft, which is RMSprop with momentum. m_graft is dropped once
// a parameter passes start_preconditioning_step, since it is never read again.
//
// The graft to RMSprop's norm stands for the "grafting to Adam's update norm": the
// reference offers SGD, AdaGrad, RMSprop and sign grafts, and RMSprop is Adam's denominator
// without bias correction. Defaults are the reference's, except the graft (the reference's
// default is SGD) and max_precond_dim (its no_preconditioning_for_layers_with_dim_gt, 8192).
// use_svd defaults to true, where the reference's default is false (Newton): eigh is what
// every Ablate Shampoo run so far used, exact where Newton stops at a residual of 1e-3 (and
// adds a ridge of 1e-6 lambda_max), and Newton is not much faster on a GPU: 5.2 to 9.9 s for
// Qwen3-0.6B's factors on an H200 against eigh's 8.5 to 9.4 (matrix_roots.h), in float32, which
// it needs (TF32 products break its stopping test).
// graft_bias_correction is not the reference's: with it the graft is Adam's denominator, as
// in Meta's DistributedShampoo (AdamGraftingConfig, use_bias_correction). Without it, v starts
// at 0, so the graft's norm, and with it every step, is 1 / sqrt(1 - beta2^t) times Adam's:
// about 32x at t = 1 and still 1.9x at t = 300 for beta2 = 0.999.
//
// State is per parameter; dtype float32 (float64 for float64 parameters, as the reference).
// Which parameters are preconditioned, and the bytes of state each holds, are
// common/optimizer_state.h's (ShampooPreconditions, OptimizerStateBytes).
// Thread-safety: one thread uses an optimizer at a time.
#ifndef ABLATE_TRAINER_LIB_OPTIM_SHAMPOO_H_
#define ABLATE_TRAINER_LIB_OPTIM_SHAMPOO_H_

#include <cstdint>
#include <vector>

#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

namespace ablate::train {

struct ShampooOptions : public torch::optim::OptimizerCloneableOptions<ShampooOptions> {
  explicit ShampooOptions(double lr = 1e-3) : lr_(lr) {}
  TORCH_ARG(double, lr);
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.999;
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(int64_t, start_preconditioning_step) = 25;
  TORCH_ARG(int64_t, precondition_frequency) = 1000;
  TORCH_ARG(int64_t, max_precond_dim) = 8192;
  TORCH_ARG(bool, nesterov) = true;
  TORCH_ARG(double, diagonal_eps) = 1e-10;
  TORCH_ARG(double, matrix_eps) = 1e-6;
  TORCH_ARG(bool, moving_average_for_momentum) = false;
  TORCH_ARG(bool, graft_bias_correction) = false;
  TORCH_ARG(bool, use_svd) = true;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override { return lr(); }
  void set_lr(double lr) override { this->lr(lr); }
};

struct ShampooParamState : public torch::optim::OptimizerCloneableParamState<ShampooParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, momentum);        // m, parameter's shape
  TORCH_ARG(torch::Tensor, graft_sq);        // v, parameter's shape
  TORCH_ARG(torch::Tensor, graft_momentum);  // m_graft; undefined past the start step
 public:
  std::vector<torch::Tensor> factors;        // F_d, [n_d, n_d], empty if not preconditioned
  std::vector<torch::Tensor> roots;          // P_d, same layout

  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

class Shampoo : public torch::optim::Optimizer {
 public:
  explicit Shampoo(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                   ShampooOptions defaults = ShampooOptions());

  // closure must be null; returns an undefined tensor.
  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_SHAMPOO_H_
