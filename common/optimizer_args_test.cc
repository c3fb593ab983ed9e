#include "common/optimizer_args.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/catalog.h"
#include "common/train_config.h"

namespace ablate {
namespace {

v1::TrainConfig With(const std::string& optimizer,
                     const std::vector<std::pair<std::string, std::string>>& args) {
  v1::TrainConfig c;
  c.set_optimizer(optimizer);
  for (const auto& [name, value] : args) {
    EXPECT_TRUE(SetTrainField(c, "optimizer_args." + name, value).ok()) << name;
  }
  return c;
}

std::string Problem(const v1::TrainConfig& c) {
  return std::string(ValidateOptimizerArgs(c).message());
}

TEST(OptimizerArgsTest, AMisspeltArgumentIsRefusedWithASuggestion) {
  // Regression: `beta_2: [0.5, 0.999]` gave two bit-identical runs under different ids.
  v1::TrainConfig c = With("adamw", {{"beta_2", "0.5"}});
  EXPECT_EQ(ValidateOptimizerArgs(c).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Problem(c),
            "optimizer_args.beta_2: adamw has no argument beta_2 (did you mean beta2?)");
  EXPECT_EQ(Problem(With("adamw", {{"momentum", "0.9"}})),
            "optimizer_args.momentum: adamw has no argument momentum (it takes beta1, beta2, eps)");
  // Every bad key, a line each, in the order of the keys.
  EXPECT_EQ(Problem(With("adamw", {{"eps", "-1"}, {"beta_2", "0.5"}, {"beta1", "0.9"}})),
            "optimizer_args.beta_2: adamw has no argument beta_2 (did you mean beta2?)\n"
            "optimizer_args.eps: -1 is outside [0, inf) for adamw");
}

TEST(OptimizerArgsTest, AValueOutOfRangeIsRefused) {
  // Regression: `beta2: 1.0` was accepted though Adam needs beta2 < 1.
  EXPECT_EQ(Problem(With("adamw", {{"beta2", "1.0"}})),
            "optimizer_args.beta2: 1 is outside [0, 1) for adamw");
  EXPECT_EQ(Problem(With("adamw8bit", {{"eps", "-1"}})),
            "optimizer_args.eps: -1 is outside [0, inf) for adamw8bit");
  EXPECT_EQ(Problem(With("muon", {{"ns_steps", "100"}})),
            "optimizer_args.ns_steps: 100 is outside [1, 100) for muon");
  EXPECT_TRUE(ValidateOptimizerArgs(With("adamw", {{"beta2", "0.999"}})).ok());
}

TEST(OptimizerArgsTest, TypesAreChecked) {
  EXPECT_TRUE(ValidateOptimizerArgs(With("muon", {{"nesterov", "false"}, {"ns_steps", "6"}})).ok());
  EXPECT_EQ(Problem(With("muon", {{"ns_steps", "5.5"}})),
            "optimizer_args.ns_steps: 5.5 must be a whole number for muon");
  EXPECT_EQ(Problem(With("muon", {{"nesterov", "0.5"}})),
            "optimizer_args.nesterov: 0.5 must be true or false for muon");
  EXPECT_EQ(Problem(With("adamw", {{"beta1", "nan"}})),
            "optimizer_args.beta1: nan must be a finite number for adamw");
  EXPECT_EQ(Problem(With("muon", {{"adam_eps", "inf"}})),
            "optimizer_args.adam_eps: inf must be a finite number for muon");
}

TEST(OptimizerArgsTest, ValidateTrainConfigChecksTheArguments) {
  v1::TrainConfig c = DefaultTrainConfig();
  ASSERT_TRUE(ValidateTrainConfig(c).ok());
  ASSERT_TRUE(SetTrainField(c, "optimizer_args.beta_2", "0.9").ok());
  EXPECT_EQ(ValidateTrainConfig(c).message(),
            "optimizer_args.beta_2: adamw has no argument beta_2 (did you mean beta2?)");
}

TEST(OptimizerArgsTest, DefaultsAndSetValuesAreRead) {
  v1::TrainConfig c = With("muon", {{"nesterov", "false"}});
  EXPECT_EQ(OptimizerArgOr(c, "nesterov"), 0);
  EXPECT_EQ(OptimizerArgOr(c, "momentum"), 0.95);
  EXPECT_EQ(OptimizerArgOr(c, "ns_steps"), 5);
  EXPECT_EQ(OptimizerArgOr(c, "adam_beta2"), 0.95);
}

TEST(OptimizerArgsTest, EveryDeclaredDefaultIsValidAndSourced) {
  for (const std::string& optimizer : OptimizerNames()) {
    const std::vector<OptimizerArg>* args = OptimizerArgs(optimizer);
    if (args == nullptr) continue;
    v1::TrainConfig c;
    c.set_optimizer(optimizer);
    for (const OptimizerArg& arg : *args) {
      (*c.mutable_optimizer_args())[arg.name] = arg.default_value;
      EXPECT_FALSE(arg.source.empty()) << optimizer << "." << arg.name;
    }
    EXPECT_TRUE(ValidateOptimizerArgs(c).ok()) << optimizer << ": " << ValidateOptimizerArgs(c);
  }
  EXPECT_NE(OptimizerArgs("adamw"), nullptr);
  EXPECT_NE(OptimizerArgs("muon"), nullptr);
}

TEST(OptimizerArgsTest, PreconditionedOptimizersCheckTheirArguments) {
  EXPECT_TRUE(ValidateOptimizerArgs(
                  With("soap", {{"precondition_frequency", "10"}, {"precondition_1d", "true"}}))
                  .ok());
  EXPECT_EQ(Problem(With("soap4bit", {{"precondition_frequncy", "10"}})),
            "optimizer_args.precondition_frequncy: soap4bit has no argument "
            "precondition_frequncy (did you mean precondition_frequency?)");
  EXPECT_EQ(Problem(With("soap", {{"precondition_frequency", "0"}})),
            "optimizer_args.precondition_frequency: 0 is outside [1, inf) for soap");
  EXPECT_EQ(Problem(With("soap", {{"max_precond_dim", "10.5"}})),
            "optimizer_args.max_precond_dim: 10.5 must be a whole number for soap");
  EXPECT_EQ(Problem(With("shampoo", {{"beta1", "1"}})),
            "optimizer_args.beta1: 1 is outside [0, 1) for shampoo");
  EXPECT_EQ(Problem(With("shampoo", {{"nesterov", "2"}})),
            "optimizer_args.nesterov: 2 must be true or false for shampoo");
}

}  // namespace
}  // namespace ablate
