// AdamW (Loshchilov & Hutter, ICLR 2019) as torch.optim.AdamW computes it, over torch's C++
// AdamWOptions and AdamWParamState, so its checkpoint is torch's AdamW archive.
//
// On CUDA a group takes one call to ATen's fused kernel (at::_fused_adamw_, what
// torch.optim.AdamW(fused=True) calls); elsewhere the per-tensor update of torch.optim.AdamW's
// single-tensor path, op for op, so on CPU the two agree to the last bit. amsgrad is not
// supported (no sweep argument sets it).
//
// Thread-safety: used by one thread, like any torch optimizer.
#ifndef ABLATE_TRAINER_LIB_OPTIM_ADAMW_H_
#define ABLATE_TRAINER_LIB_OPTIM_ADAMW_H_

#include <vector>

#include <torch/optim/adamw.h>

namespace ablate::train {

// One AdamW step of the parameters of `group` that have a gradient, with the group's
// AdamWOptions; their AdamWParamState lives in `state`, keyed as torch keys it (the
// parameter's TensorImpl), and is created on the first step. The step size is the group's lr
// times `lr_scale` (Muon's AdamW part runs at a multiple of the schedule's rate).
void AdamWGroupStep(torch::optim::OptimizerParamGroup& group,
                    ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>>&
                        state,
                    double lr_scale = 1.0);

class AdamW : public torch::optim::AdamW {
 public:
  explicit AdamW(std::vector<torch::optim::OptimizerParamGroup> groups)
      : torch::optim::AdamW(std::move(groups)) {}

  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_ADAMW_H_
