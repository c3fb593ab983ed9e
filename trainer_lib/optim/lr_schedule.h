// The learning-rate schedule of a run (TrainConfig.lr_schedule), after a linear warmup to
// TrainConfig.learning_rate over warmup_steps:
//   cosine  decay to min_lr_ratio * learning_rate at the end of the run, as in llm.c;
//   wsd     warmup-stable-decay (Hu et al. 2024, "MiniCPM", arXiv:2404.06395): the peak until
//           the final decay_fraction of the steps, then a linear fall to the same floor
//           (linear rather than MiniCPM's exponential, as Hägele et al. 2024, arXiv:2405.18392,
//           found it at least as good and it reaches the floor exactly).
// A pure function of the config and the step, so a resumed run needs no schedule state beyond
// its step. Safe from any thread.
#ifndef ABLATE_TRAINER_LIB_OPTIM_LR_SCHEDULE_H_
#define ABLATE_TRAINER_LIB_OPTIM_LR_SCHEDULE_H_

#include <cstdint>

#include "ablate/v1/config.pb.h"

namespace ablate::train {

// The rate for optimizer step `step` (0-based, below config.steps()), with W = warmup_steps,
// S = steps, min = min_lr_ratio * lr and D = max(1, round(decay_fraction * S)):
//   step < W:        lr * (step + 1) / W
//   cosine:          min + (lr - min) * (1 + cos(pi * (step - W) / (S - W))) / 2
//   wsd, step < S-D: lr
//   wsd, otherwise:  lr + (min - lr) * (step - (S - D) + 1) / D   (the last step is at min)
// `config` has been through WithLoopDefaults (an empty lr_schedule is cosine there).
double LearningRate(const v1::TrainConfig& config, int64_t step);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_OPTIM_LR_SCHEDULE_H_
