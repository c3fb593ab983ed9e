#include "trainer_lib/optim/lr_schedule.h"

#include <cmath>

#include <gtest/gtest.h>

namespace ablate::train {
namespace {

v1::TrainConfig Schedule(double lr, double min_ratio, uint32_t warmup, uint32_t steps) {
  v1::TrainConfig c;
  c.set_learning_rate(lr);
  c.set_min_lr_ratio(min_ratio);
  c.set_warmup_steps(warmup);
  c.set_steps(steps);
  return c;
}

TEST(LrScheduleTest, WarmupRisesLinearlyToThePeak) {
  v1::TrainConfig c = Schedule(1e-2, 0.1, 10, 110);
  EXPECT_DOUBLE_EQ(LearningRate(c, 0), 1e-3);
  EXPECT_DOUBLE_EQ(LearningRate(c, 4), 5e-3);
  EXPECT_DOUBLE_EQ(LearningRate(c, 9), 1e-2);
}

TEST(LrScheduleTest, CosineFallsFromThePeakToTheFloor) {
  v1::TrainConfig c = Schedule(1e-2, 0.1, 10, 110);
  EXPECT_DOUBLE_EQ(LearningRate(c, 10), 1e-2);  // start of decay: the peak
  EXPECT_NEAR(LearningRate(c, 60), 0.5 * (1e-2 + 1e-3), 1e-12);  // halfway: the midpoint
  EXPECT_NEAR(LearningRate(c, 35), 1e-3 + 9e-3 * 0.5 * (1 + std::sqrt(0.5)), 1e-12);
  EXPECT_GT(LearningRate(c, 109), 1e-3);  // the last step stays just above the floor
  EXPECT_NEAR(LearningRate(c, 109), 1e-3, 1e-5);
}

TEST(LrScheduleTest, NoWarmupStartsAtThePeak) {
  v1::TrainConfig c = Schedule(3e-3, 0.0, 0, 100);
  EXPECT_DOUBLE_EQ(LearningRate(c, 0), 3e-3);
  EXPECT_NEAR(LearningRate(c, 50), 1.5e-3, 1e-12);
}

TEST(LrScheduleTest, DecreasesMonotonicallyAfterWarmup) {
  v1::TrainConfig c = Schedule(1e-3, 0.1, 5, 50);
  for (int64_t step = 5; step + 1 < 50; ++step) {
    EXPECT_GT(LearningRate(c, step), LearningRate(c, step + 1)) << step;
  }
}

TEST(LrScheduleTest, WsdHoldsThePeakThenFallsLinearlyToTheFloor) {
  v1::TrainConfig c = Schedule(1e-2, 0.1, 10, 110);
  c.set_lr_schedule("wsd");
  c.set_decay_fraction(0.2);  // the last 22 steps, 88..109
  EXPECT_DOUBLE_EQ(LearningRate(c, 4), 5e-3);  // warmup as with cosine
  EXPECT_DOUBLE_EQ(LearningRate(c, 10), 1e-2);
  EXPECT_DOUBLE_EQ(LearningRate(c, 87), 1e-2);  // stable to the last step before the decay
  EXPECT_NEAR(LearningRate(c, 88), 1e-2 - 9e-3 / 22, 1e-15);
  EXPECT_NEAR(LearningRate(c, 98), 1e-2 - 9e-3 * 11 / 22, 1e-15);  // halfway
  EXPECT_NEAR(LearningRate(c, 109), 1e-3, 1e-15);  // the floor at the last step
  for (int64_t step = 88; step + 1 < 110; ++step) {
    EXPECT_NEAR(LearningRate(c, step) - LearningRate(c, step + 1), 9e-3 / 22, 1e-15) << step;
  }
}

}  // namespace
}  // namespace ablate::train
