#include "trainer_lib/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace ablate::train {

double LearningRate(const v1::TrainConfig& config, int64_t step) {
  const double peak = config.learning_rate();
  const int64_t warmup = config.warmup_steps();
  if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double floor = config.min_lr_ratio() * peak;
  const int64_t decay_steps = std::max<int64_t>(1, config.steps() - warmup);
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(decay_steps);
  return floor + (peak - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace ablate::train
