#include "trainer_lib/optim/optimizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/catalog.h"
#include "trainer_lib/optim/shampoo.h"
#include "trainer_lib/optim/soap.h"

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

TEST(OptimizerTest, EveryCatalogOptimizerIsBuiltAndOthersAreRefused) {
  torch::nn::Linear linear(4, 3);
  v1::TrainConfig config = AdamW();
  for (const std::string& name : OptimizerNames()) {
    config.set_optimizer(name);
    EXPECT_TRUE(MakeOptimizer(config, *linear).ok()) << name;
  }
  config.set_optimizer("sgd");
  EXPECT_EQ(MakeOptimizer(config, *linear).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OptimizerTest, PreconditionedOptimizersDecayMatricesOnly) {
  torch::nn::Linear linear(torch::nn::LinearOptions(4, 3).bias(true));
  v1::TrainConfig config = AdamW();
  for (const std::string name : {"soap", "soap4bit", "shampoo"}) {
    config.set_optimizer(name);
    (*config.mutable_optimizer_args())["precondition_frequency"] = 3;
    auto optimizer = MakeOptimizer(config, *linear);
    ASSERT_TRUE(optimizer.ok()) << optimizer.status();
    auto& groups = (*optimizer)->param_groups();
    ASSERT_EQ(groups.size(), 2u) << name;
    EXPECT_EQ(groups[0].params()[0].dim(), 2) << name;
    EXPECT_EQ(groups[1].params()[0].dim(), 1) << name;
    const auto decay = [&](size_t g) {
      return name == "shampoo"
                 ? static_cast<ShampooOptions&>(groups[g].options()).weight_decay()
                 : static_cast<SoapOptions&>(groups[g].options()).weight_decay();
    };
    EXPECT_DOUBLE_EQ(decay(0), 0.5) << name;
    EXPECT_DOUBLE_EQ(decay(1), 0.0) << name;
  }
}

}  // namespace
}  // namespace ablate::train
