#include "trainer_lib/train/divergence.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ablate::train {

absl::Status DivergenceWatch::Observe(int64_t step, double loss) {
  if (factor_ == 0) return absl::OkStatus();
  if (loss > factor_ * minimum_) {
    if (++above_ >= evals_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "step ", step, ": diverged: eval/loss ", loss, " stayed above ", factor_,
          " x its minimum ", minimum_, " for ", above_,
          above_ == 1 ? " evaluation" : " evaluations"));
    }
    return absl::OkStatus();
  }
  above_ = 0;
  minimum_ = std::min(minimum_, loss);
  return absl::OkStatus();
}

}  // namespace ablate::train
