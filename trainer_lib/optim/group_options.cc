#include "trainer_lib/optim/group_options.h"

namespace ablate::train {

void KeepGroupOptions(const std::vector<torch::optim::OptimizerParamGroup>& groups,
                      torch::optim::Optimizer& optimizer) {
  for (size_t i = 0; i < groups.size(); ++i) {
    if (groups[i].has_options()) {
      optimizer.param_groups()[i].set_options(groups[i].options().clone());
    }
  }
}

}  // namespace ablate::train
