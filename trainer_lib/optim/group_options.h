// LibTorch 2.13's Optimizer::add_param_group gives a group of an optimizer type it does not
// know (any but its own) the optimizer's default options, even when the group brought its
// own, so a group without weight decay would decay. Our optimizers call this in their
// constructors to give each group back the options it was built with.
//
// Stateless; safe from any thread for distinct optimizers.
#ifndef ABLATE_TRAINER_LIB_OPTIM_GROUP_OPTIONS_H_
#define ABLATE_TRAINER_LIB_OPTIM_GROUP_OPTIONS_H_

#include <vector>

#include <torch/optim/optimizer.h>

namespace ablate::train {

// groups: those the optimizer was constructed with, in the same order.
void KeepGroupOptions(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                      torch::optim::Optimizer& optimizer);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_GROUP_OPTIONS_H_
