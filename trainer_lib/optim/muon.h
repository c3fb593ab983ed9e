// Muon (Jordan et al. 2024, "Muon: an optimizer for hidden layers in neural networks") as
// torch.optim.Muon computes it, on the hidden matrices, with AdamW (trainer_lib/optim/adamw.h)
// on everything else: the token embedding, the output head, norms and gains, as Muon's authors
// prescribe.
//
// Per hidden matrix W [rows, cols] with gradient G, momentum buffer B (fp32, like W):
//   B <- lerp(B, G, 1 - momentum);  U = nesterov ? lerp(G, B, momentum) : B
//   O = NewtonSchulz(U): in bf16, transposed when rows > cols, X = U / max(|U|_F, ns_eps), then
//       ns_steps times A = X X^T, X <- a X + (b A + c A A) X, coefficients (a, b, c)
//   W <- W (1 - lr * weight_decay) - lr' O,  lr' = lr * sqrt(max(1, rows / cols)), or with
//       match_rms_adamw lr * 0.2 * sqrt(max(rows, cols)) (Liu et al. 2025).
// The same operations in the same order as torch.optim.Muon, so on CPU the two agree to fp32
// rounding. Defaults and ranges: common/optimizer_args.h.
//
// Speed: the momentum, Nesterov and weight-decay steps run as multi-tensor (foreach) operations
// over all hidden matrices, and Newton-Schulz runs once per shape over the stacked matrices of
// that shape (batched bf16 matmuls), which yields the same bits as one matrix at a time; the
// AdamW part is ATen's fused AdamW on CUDA.
//
// State per parameter: a momentum buffer (hidden matrices) or AdamW's step, exp_avg and
// exp_avg_sq; saved by parameter position, each entry alone, by save()/load().
//
// Thread-safety: used by one thread, like any torch optimizer.
#ifndef ABLATE_TRAINER_LIB_OPTIM_MUON_H_
#define ABLATE_TRAINER_LIB_OPTIM_MUON_H_

#include <vector>

#include <torch/optim/optimizer.h>

namespace ablate::train {

struct MuonOptions : public torch::optim::OptimizerCloneableOptions<MuonOptions> {
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, weight_decay) = 0.1;
  TORCH_ARG(double, momentum) = 0.95;
  TORCH_ARG(bool, nesterov) = true;
  TORCH_ARG(int64_t, ns_steps) = 5;
  TORCH_ARG(double, ns_a) = 3.4445;
  TORCH_ARG(double, ns_b) = -4.7750;
  TORCH_ARG(double, ns_c) = 2.0315;
  TORCH_ARG(double, ns_eps) = 1e-7;
  TORCH_ARG(bool, match_rms_adamw) = false;

  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

struct MuonParamState : public torch::optim::OptimizerCloneableParamState<MuonParamState> {
  TORCH_ARG(torch::Tensor, momentum_buffer);
};

// The orthogonalized update of `update` [rows, cols], or of each matrix of a stack
// [n, rows, cols] (one batched computation, each matrix as it would be alone), in bf16 (see
// above); the result has `update`'s shape.
torch::Tensor NewtonSchulz(const torch::Tensor& update, const MuonOptions& o);

class Muon : public torch::optim::Optimizer {
 public:
  // Groups whose options are MuonOptions (hidden matrices only) or torch's AdamWOptions; the
  // AdamW groups step at their lr times `adam_lr_ratio`.
  Muon(std::vector<torch::optim::OptimizerParamGroup> groups, double adam_lr_ratio);

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  // Throws c10::Error naming the entry when a saved tensor does not fit its parameter.
  void load(torch::serialize::InputArchive& archive) override;

 private:
  const double adam_lr_ratio_;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_MUON_H_
