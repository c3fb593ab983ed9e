#include "trainer_lib/optim/optimizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

v1::TrainConfig AdamW() {
  v1::TrainConfig c;
  c.set_optimizer("adamw");
  c.set_learning_rate(1e-2);
  c.set_weight_decay(0.5);
  return c;
}

TEST(OptimizerTest, AdamWDecaysMatricesOnly) {
  torch::nn::Linear linear(torch::nn::LinearOptions(4, 3).bias(true));
  v1::TrainConfig config = AdamW();
  (*config.mutable_optimizer_args())["beta2"] = 0.99;
  auto optimizer = MakeOptimizer(config, *linear);
  ASSERT_TRUE(optimizer.ok()) << optimizer.status();
  auto& groups = (*optimizer)->param_groups();
  ASSERT_EQ(groups.size(), 2u);
  const auto& decayed = static_cast<torch::optim::AdamWOptions&>(groups[0].options());
  const auto& undecayed = static_cast<torch::optim::AdamWOptions&>(groups[1].options());
  EXPECT_EQ(groups[0].params().size(), 1u);  // weight [3, 4]
  EXPECT_EQ(groups[0].params()[0].dim(), 2);
  EXPECT_EQ(groups[1].params().size(), 1u);  // bias [3]
  EXPECT_DOUBLE_EQ(decayed.weight_decay(), 0.5);
  EXPECT_DOUBLE_EQ(undecayed.weight_decay(), 0.0);
  EXPECT_DOUBLE_EQ(std::get<0>(decayed.betas()), 0.9);
  EXPECT_DOUBLE_EQ(std::get<1>(decayed.betas()), 0.99);
  EXPECT_DOUBLE_EQ(decayed.eps(), 1e-8);
}

TEST(OptimizerTest, SetLearningRateReachesEveryGroup) {
  torch::nn::Linear linear(torch::nn::LinearOptions(4, 3).bias(true));
  auto optimizer = MakeOptimizer(AdamW(), *linear);
  ASSERT_TRUE(optimizer.ok()) << optimizer.status();
  SetLearningRate(**optimizer, 2.5e-4);
  for (auto& group : (*optimizer)->param_groups()) {
    EXPECT_DOUBLE_EQ(group.options().get_lr(), 2.5e-4);
  }
}

TEST(OptimizerTest, OtherOptimizersAreRefusedClearly) {
  torch::nn::Linear linear(4, 3);
  v1::TrainConfig config = AdamW();
  config.set_optimizer("soap");
  auto soap = MakeOptimizer(config, *linear);
  EXPECT_EQ(soap.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(soap.status().message(), "optimizer soap is not implemented yet");
  config.set_optimizer("sgd");
  EXPECT_EQ(MakeOptimizer(config, *linear).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ablate::train
