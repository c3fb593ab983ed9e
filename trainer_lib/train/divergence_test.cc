#include "trainer_lib/train/divergence.h"

#include <gtest/gtest.h>

namespace ablate::train {
namespace {

TEST(DivergenceWatchTest, StopsAfterTheSetNumberOfEvaluationsAboveTheFactor) {
  DivergenceWatch watch(2.0, 3);
  EXPECT_TRUE(watch.Observe(10, 5.0).ok());
  EXPECT_TRUE(watch.Observe(20, 3.0).ok());  // minimum 3: the bound is 6
  EXPECT_TRUE(watch.Observe(30, 6.5).ok());  // 1 above
  EXPECT_TRUE(watch.Observe(40, 7.0).ok());  // 2 above
  const absl::Status stopped = watch.Observe(50, 8.0);
  EXPECT_EQ(stopped.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stopped.message(),
            "step 50: diverged: eval/loss 8 stayed above 2 x its minimum 3 for 3 evaluations");
}

TEST(DivergenceWatchTest, ASpikeTheRunRecoversFromPasses) {
  DivergenceWatch watch(2.0, 2);
  EXPECT_TRUE(watch.Observe(1, 3.0).ok());
  EXPECT_TRUE(watch.Observe(2, 7.0).ok());  // above once
  EXPECT_TRUE(watch.Observe(3, 5.9).ok());  // back under 6: the count starts again
  EXPECT_TRUE(watch.Observe(4, 6.1).ok());
  EXPECT_FALSE(watch.Observe(5, 6.1).ok());
  // Exactly at the bound is not above it.
  DivergenceWatch edge(2.0, 1);
  EXPECT_TRUE(edge.Observe(1, 3.0).ok());
  EXPECT_TRUE(edge.Observe(2, 6.0).ok());
  EXPECT_FALSE(edge.Observe(3, 6.0000001).ok());
}

TEST(DivergenceWatchTest, FactorZeroIsOff) {
  DivergenceWatch watch(0, 1);
  EXPECT_TRUE(watch.Observe(1, 1.0).ok());
  EXPECT_TRUE(watch.Observe(2, 1e9).ok());
}

}  // namespace
}  // namespace ablate::train
