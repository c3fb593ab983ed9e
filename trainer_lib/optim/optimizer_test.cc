#include "trainer_lib/optim/optimizer.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/catalog.h"
#include "common/model_math.h"
#include "trainer_lib/model/qwen3.h"
#include "trainer_lib/optim/adamw8bit.h"
#include "trainer_lib/optim/muon.h"
#include "trainer_lib/optim/shampoo.h"
#include "trainer_lib/optim/soap.h"
#include "trainer_lib/optim/soap4bit.h"

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

// Qwen3's names for a small model: every role, one matrix large enough for 8-bit moments.
std::vector<NamedParameter> Parameters() {
  torch::manual_seed(3);
  std::vector<NamedParameter> out = {
      {"embed_tokens.weight", torch::randn({50, 16})},
      {"layers.0.input_layernorm.weight", torch::randn({16})},
      {"layers.0.self_attn.q_proj.weight", torch::randn({16, 16})},
      {"layers.0.mlp.up_proj.weight", torch::randn({256, 16})},
      {"norm.weight", torch::randn({16})},
      {"lm_head.weight", torch::randn({50, 16})},
  };
  for (NamedParameter& p : out) p.tensor.set_requires_grad(true);
  return out;
}

// Bytes of every state tensor the optimizer holds now (undefined ones: not held).
double HeldStateBytes(torch::optim::Optimizer& optimizer) {
  double bytes = 0;
  for (const auto& [key, state] : optimizer.state()) {
    std::vector<torch::Tensor> tensors;
    if (auto* s = dynamic_cast<torch::optim::AdamWParamState*>(state.get())) {
      tensors = {s->exp_avg(), s->exp_avg_sq()};
    } else if (auto* s = dynamic_cast<MuonParamState*>(state.get())) {
      tensors = {s->momentum_buffer()};
    } else if (auto* s = dynamic_cast<AdamW8bitParamState*>(state.get())) {
      tensors = {s->exp_avg(), s->exp_avg_scale(), s->exp_avg_sq(), s->exp_avg_sq_scale()};
    } else if (auto* s = dynamic_cast<SoapParamState*>(state.get())) {
      tensors = {s->exp_avg(), s->exp_avg_sq()};
      for (const auto* list : {&s->factors, &s->bases}) {
        tensors.insert(tensors.end(), list->begin(), list->end());
      }
    } else if (auto* s = dynamic_cast<ShampooParamState*>(state.get())) {
      tensors = {s->momentum(), s->graft_sq(), s->graft_momentum()};
      for (const auto* list : {&s->factors, &s->roots}) {
        tensors.insert(tensors.end(), list->begin(), list->end());
      }
    } else if (auto* s = dynamic_cast<Soap4bitParamState*>(state.get())) {
      tensors = {s->exp_avg_codes(), s->exp_avg_scales(), s->exp_avg_sq_codes(),
                 s->exp_avg_sq_scales()};
      for (const auto* list :
           {&s->factor_codes, &s->factor_scales, &s->basis_codes, &s->basis_scales}) {
        tensors.insert(tensors.end(), list->begin(), list->end());
      }
    }
    for (const torch::Tensor& t : tensors) {
      if (t.defined()) bytes += static_cast<double>(t.nbytes());
    }
  }
  return bytes;
}

TEST(OptimizerTest, MuonOrthogonalizesHiddenMatricesOnly) {
  v1::TrainConfig config = AdamW();
  config.set_optimizer("muon");
  auto optimizer = MakeOptimizer(config, Parameters());
  ASSERT_TRUE(optimizer.ok()) << optimizer.status();
  auto& groups = (*optimizer)->param_groups();
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_NE(dynamic_cast<MuonOptions*>(&groups[0].options()), nullptr);
  EXPECT_EQ(groups[0].params().size(), 2u);  // q_proj, up_proj
  EXPECT_EQ(groups[1].params().size(), 2u);  // embed_tokens, lm_head: AdamW, decayed
  EXPECT_EQ(groups[2].params().size(), 2u);  // the norms: AdamW, not decayed
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamWOptions&>(groups[2].options()).weight_decay(),
                   0.0);
}

TEST(OptimizerTest, MuonNewtonSchulzOfAStackIsEachMatrixAlone) {
  torch::manual_seed(5);
  const MuonOptions options;
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{24, 24}, {72, 24}, {24, 72}}) {
    const torch::Tensor stack = torch::randn({3, shape[0], shape[1]});
    const torch::Tensor batched = NewtonSchulz(stack, options);
    ASSERT_EQ(batched.sizes(), stack.sizes());
    for (int64_t i = 0; i < 3; ++i) {
      const torch::Tensor alone = NewtonSchulz(stack[i], options);
      EXPECT_TRUE(torch::equal(batched[i], alone)) << shape[0] << "x" << shape[1] << " " << i;
      // Orthogonalized: the singular values are near one (the quintic leaves them in 0.5-1.5).
      const torch::Tensor s = torch::linalg_svdvals(alone.to(torch::kFloat32));
      EXPECT_GT(s.min().item<float>(), 0.4f);
      EXPECT_LT(s.max().item<float>(), 1.6f);
    }
  }
}

// A configuration of one optimizer whose state size the tests below check, by its name.
struct StateCase {
  std::string name;  // the optimizer and the arguments it sets
  v1::TrainConfig config;
};

// Each of the six optimizers by default, the preconditioned ones through a refresh
// (precondition_frequency 2), again with max_precond_dim `bound`, and Shampoo with m_graft
// dropped after the first step (start_preconditioning_step 1, where 25 keeps it).
std::vector<StateCase> StateCases(double bound) {
  EXPECT_EQ(OptimizerNames().size(), 6u);  // a seventh needs its cases here
  std::vector<std::pair<std::string, std::map<std::string, double>>> cases = {
      {"adamw", {}}, {"adamw8bit", {}}, {"muon", {}}};
  for (const std::string name : {"soap", "soap4bit", "shampoo"}) {
    cases.push_back({name, {{"precondition_frequency", 2}}});
    cases.push_back({name, {{"precondition_frequency", 2}, {"max_precond_dim", bound}}});
  }
  cases.push_back({"shampoo", {{"precondition_frequency", 2}, {"start_preconditioning_step", 1}}});
  std::vector<StateCase> out;
  for (const auto& [optimizer, args] : cases) {
    StateCase c{optimizer, AdamW()};
    for (const auto& [arg, value] : args) c.name += " " + arg;
    c.config.set_optimizer(optimizer);
    c.config.mutable_optimizer_args()->insert(args.begin(), args.end());
    out.push_back(std::move(c));
  }
  return out;
}

// Steps `optimizer` over `parameters` twice on fresh gradients and expects it to hold `bytes`
// of state after each step.
void ExpectHoldsAfterEachStep(torch::optim::Optimizer& optimizer,
                              std::vector<NamedParameter>& parameters, double bytes,
                              const std::string& name) {
  for (int64_t step = 1; step <= 2; ++step) {
    for (NamedParameter& p : parameters) p.tensor.mutable_grad() = torch::randn_like(p.tensor);
    optimizer.step();
    EXPECT_DOUBLE_EQ(HeldStateBytes(optimizer), bytes) << name << " step " << step;
  }
}

double Elements(const std::vector<NamedParameter>& parameters) {
  double elements = 0;
  for (const NamedParameter& p : parameters) elements += static_cast<double>(p.tensor.numel());
  return elements;
}

// Known before the first step, what the state holds after it and after a refresh. A bound of
// 64 leaves up_proj's 256-row side unpreconditioned under SOAP and the whole matrix under
// Shampoo.
TEST(OptimizerTest, StateBytesPerParameterIsWhatTheStateHolds) {
  for (StateCase& c : StateCases(64)) {
    std::vector<NamedParameter> parameters = Parameters();
    auto optimizer = MakeOptimizer(c.config, parameters);
    ASSERT_TRUE(optimizer.ok()) << optimizer.status();
    const double predicted = StateBytesPerParameter(**optimizer);
    EXPECT_GT(predicted, 0) << c.name;
    ExpectHoldsAfterEachStep(**optimizer, parameters, predicted * Elements(parameters), c.name);
  }
  v1::TrainConfig adamw = AdamW();
  EXPECT_DOUBLE_EQ(StateBytesPerParameter(**MakeOptimizer(adamw, Parameters())), 8.0);
}

// The memory plan's optimizer term (common/model_math.h) is the state each optimizer really
// allocates for a model's weights: over the tiny Qwen3 model on the CPU every case holds
// PlanMemory's bytes exactly, and StateBytesPerParameter reports them. A bound of 128 is
// exceeded by the tiny model's 256-row embedding and 192-wide MLP matrices: SOAP drops those
// sides, Shampoo those matrices.
TEST(OptimizerTest, MemoryPlanIsWhatEveryOptimizerAllocates) {
  const absl::StatusOr<v1::ModelConfig> tiny = ModelByName("tiny");
  ASSERT_TRUE(tiny.ok()) << tiny.status();
  for (StateCase& c : StateCases(128)) {
    c.config.set_micro_batch_size(1);
    torch::manual_seed(7);
    absl::StatusOr<Qwen3> model = BuildQwen3(*tiny, "dense");
    ASSERT_TRUE(model.ok()) << model.status();
    std::vector<NamedParameter> parameters = NamedParameters(**model);
    auto optimizer = MakeOptimizer(c.config, parameters);
    ASSERT_TRUE(optimizer.ok()) << optimizer.status();
    const absl::StatusOr<MemoryPlan> plan = PlanMemory(*tiny, RankWorkOf(c.config));
    ASSERT_TRUE(plan.ok()) << plan.status();
    const double planned = static_cast<double>(plan->optimizer);
    EXPECT_EQ(Elements(parameters), static_cast<double>(ParameterCount(*tiny))) << c.name;
    EXPECT_DOUBLE_EQ(StateBytesPerParameter(**optimizer) * Elements(parameters), planned)
        << c.name;
    ExpectHoldsAfterEachStep(**optimizer, parameters, planned, c.name);
  }
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
