// SOAP: Adam run in the eigenbasis of Shampoo's Kronecker factors (Vyas et al., "SOAP:
// Improving and Stabilizing Shampoo using Adam", ICLR 2025, arXiv:2409.11321). The algorithm,
// its order of operations and its defaults are those of pytorch-optimizer 4.1.0's SOAP, a port
// of the paper's code:
//   1. A parameter's first step only accumulates its factors and takes their eigenbases
//      (eigh); it does not move the parameter.
//   2. Each later step t = 1, 2, ...: G' = G in the eigenbasis; m <- lerp(m, G, 1 - beta1)
//      (kept in the parameter's basis); v <- lerp(v, G'^2, 1 - beta2) (in the eigenbasis);
//      u = back-projection of (m in the eigenbasis) / (sqrt(v) + eps); with normalize_grads
//      u <- u / (rms(u) + eps); p <- p - lr * sqrt(1 - beta2^t) / (1 - beta1^t) * u (the
//      fraction only with correct_bias); p <- p * (1 - lr * weight_decay).
//   3. Then the factors take G (rate 1 - shampoo_beta), and every precondition_frequency-th
//      step the bases are refreshed by one power iteration with QR, v's axes following.
// Dimensions above max_precond_dim, and vectors unless precondition_1d, keep the identity
// basis: on them SOAP is Adam.
//
// State is per parameter (step, m, v, factors, bases), so it can be sharded by parameter; the
// refreshes of one step are batched across parameters by factor size (kronecker.h), and a
// step's projections and factor statistics across same-shaped parameters of a group (batched
// matmuls over stacked copies; the state stays per parameter). A
// parameter without a gradient in a step is skipped, its step count unchanged.
//
// Thread-safety: one thread uses an optimizer at a time.
#ifndef ABLATE_TRAINER_LIB_OPTIM_SOAP_H_
#define ABLATE_TRAINER_LIB_OPTIM_SOAP_H_

#include <cstdint>
#include <vector>

#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

namespace ablate::train {

struct SoapOptions : public torch::optim::OptimizerCloneableOptions<SoapOptions> {
  explicit SoapOptions(double lr = 3e-3) : lr_(lr) {}
  TORCH_ARG(double, lr);
  TORCH_ARG(double, beta1) = 0.95;
  TORCH_ARG(double, beta2) = 0.95;
  // The factors' averaging rate; negative means beta2, as the reference's None.
  TORCH_ARG(double, shampoo_beta) = -1.0;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 1e-2;
  TORCH_ARG(int64_t, precondition_frequency) = 10;
  TORCH_ARG(int64_t, max_precond_dim) = 10000;
  TORCH_ARG(bool, precondition_1d) = false;
  TORCH_ARG(bool, normalize_grads) = false;
  TORCH_ARG(bool, correct_bias) = true;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override { return lr(); }
  void set_lr(double lr) override { this->lr(lr); }
};

struct SoapParamState : public torch::optim::OptimizerCloneableParamState<SoapParamState> {
  TORCH_ARG(int64_t, step) = 0;              // steps taken, the first (factor-only) included
  TORCH_ARG(torch::Tensor, exp_avg);         // m, parameter's shape and basis, float32
  TORCH_ARG(torch::Tensor, exp_avg_sq);      // v, parameter's shape, eigenbasis, float32
 public:
  std::vector<torch::Tensor> factors;        // one [n_d, n_d] per dimension, or undefined
  std::vector<torch::Tensor> bases;          // eigenbases of the factors, same layout

  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

// Step 2 above for a parameter's step t >= 1: updates m and v in place and returns the
// direction u; the parameter moves by -SoapStepSize(o, t) * u before weight decay. Shared with
// Soap4bit, which holds m, v and the bases in 4 bits between steps.
torch::Tensor SoapDirection(const torch::Tensor& grad, const std::vector<torch::Tensor>& bases,
                            const SoapOptions& o, torch::Tensor& exp_avg,
                            torch::Tensor& exp_avg_sq);

// SoapDirection for B same-shaped parameters at once: grads [B, ...] stacked, bases stacked per
// dimension as ProjectBatch (kronecker.h) takes them, exp_avgs and exp_avg_sqs the B parameters'
// own m and v (updated in place, element-wise as above). Returns the directions [B, ...], each
// slice what SoapDirection gives for that parameter (bit for bit on the CPU for 1-D and 2-D
// parameters, up to the rounding of normalize_grads' mean).
torch::Tensor SoapDirectionBatch(const torch::Tensor& grads,
                                 const std::vector<torch::Tensor>& bases, const SoapOptions& o,
                                 const std::vector<torch::Tensor>& exp_avgs,
                                 const std::vector<torch::Tensor>& exp_avg_sqs);

// lr, times sqrt(1 - beta2^t) / (1 - beta1^t) with correct_bias.
double SoapStepSize(const SoapOptions& o, int64_t t);

// The factors' averaging rate: shampoo_beta, or beta2 when it is negative.
double ShampooBeta(const SoapOptions& o);

class Soap : public torch::optim::Optimizer {
 public:
  explicit Soap(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                SoapOptions defaults = SoapOptions());

  // closure must be null; returns an undefined tensor.
  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_SOAP_H_
