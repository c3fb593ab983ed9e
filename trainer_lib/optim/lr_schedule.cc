#include "trainer_lib/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace ablate::train {
namespace {

double Cosine(const v1::TrainConfig& config, int64_t step, double floor) {
  const double peak = config.learning_rate();
  const int64_t warmup = config.warmup_steps();
  const int64_t decay_steps = std::max<int64_t>(1, config.steps() - warmup);
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(decay_steps);
  return floor + (peak - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

double WarmupStableDecay(const v1::TrainConfig& config, int64_t step, double floor) {
  const double peak = config.learning_rate();
  const int64_t total = config.steps();
  const int64_t decay_steps = std::max<int64_t>(
      1, std::llround(config.decay_fraction() * static_cast<double>(total)));
  const int64_t decay_start = total - decay_steps;
  if (step < decay_start) return peak;
  const double progress =
      static_cast<double>(step - decay_start + 1) / static_cast<double>(decay_steps);
  return peak + (floor - peak) * progress;
}

}  // namespace

double LearningRate(const v1::TrainConfig& config, int64_t step) {
  const double peak = config.learning_rate();
  const int64_t warmup = config.warmup_steps();
  if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double floor = config.min_lr_ratio() * peak;
  if (config.lr_schedule() == "wsd") return WarmupStableDecay(config, step, floor);
  return Cosine(config, step, floor);
}

}  // namespace ablate::train
