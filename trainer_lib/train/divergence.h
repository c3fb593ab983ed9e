// Stops a run that has diverged: after each evaluation, the loss is compared with the lowest
// evaluation loss seen so far, and once it has stayed above `factor` times that minimum for
// `evals` evaluations in a row the run is over. A spike the run recovers from within fewer
// evaluations passes. The trainer fails such a run as permanently failed
// (FailedPrecondition, exit code 3), so the coordinator does not retry it: another attempt
// would diverge again.
//
// The minimum lives in memory only: a resumed run starts a new one, which can delay a stop by
// the evaluations it takes to see the divergence again, never cause a false one.
//
// Plain arithmetic on doubles, no LibTorch. Not thread-safe; one per run.
#ifndef ABLATE_TRAINER_LIB_TRAIN_DIVERGENCE_H_
#define ABLATE_TRAINER_LIB_TRAIN_DIVERGENCE_H_

#include <cstdint>
#include <limits>

#include "absl/status/status.h"

namespace ablate::train {

class DivergenceWatch {
 public:
  // `factor` 0 turns the watch off; otherwise it must be above 1 (ValidateTrainConfig).
  // `evals` >= 1.
  DivergenceWatch(double factor, uint32_t evals) : factor_(factor), evals_(evals) {}

  // Notes the evaluation loss at `step` (finite: a non-finite loss fails the run before).
  // FailedPrecondition once the run diverged: "step 40: diverged: eval/loss 7.9 stayed above
  // 2 x its minimum 3.1 for 3 evaluations".
  absl::Status Observe(int64_t step, double loss);

 private:
  const double factor_;
  const uint32_t evals_;
  double minimum_ = std::numeric_limits<double>::infinity();
  uint32_t above_ = 0;  // consecutive evaluations above factor_ * minimum_
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_TRAIN_DIVERGENCE_H_
