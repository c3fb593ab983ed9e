// The learning-rate schedule of a run: linear warmup to TrainConfig.learning_rate over
// warmup_steps, then cosine decay to min_lr_ratio * learning_rate at the end of the run, as in
// llm.c. A pure function of the config and the step, so a resumed run needs no schedule state.
// Safe from any thread.
#ifndef ABLATE_TRAINER_LIB_OPTIM_LR_SCHEDULE_H_
#define ABLATE_TRAINER_LIB_OPTIM_LR_SCHEDULE_H_

#include <cstdint>

#include "ablate/v1/config.pb.h"

namespace ablate::train {

// The rate for optimizer step `step` (0-based, below config.steps()):
//   step < W:  lr * (step + 1) / W
//   else:      min + (lr - min) * (1 + cos(pi * (step - W) / (steps - W))) / 2,
// with W = warmup_steps and min = min_lr_ratio * lr.
double LearningRate(const v1::TrainConfig& config, int64_t step);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_LR_SCHEDULE_H_
