#include "trainer_lib/optim/soap.h"

#include <cmath>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer_lib/optim/optimizer_testing.h"

namespace ablate::train {
namespace {

using testing::ExpectSaveLoadContinuesBitIdentically;
using testing::OneGroup;
using testing::SetGrads;

TEST(SoapTest, FirstStepOnlyGathersStatistics) {
  torch::Tensor w = torch::randn({5, 3});
  const torch::Tensor before = w.clone();
  Soap soap(OneGroup({w}));
  SetGrads({w}, 1);
  soap.step();
  EXPECT_TRUE(torch::equal(w, before));
  SetGrads({w}, 2);
  soap.step();
  EXPECT_FALSE(torch::equal(w, before));
}

// A vector without precondition_1d keeps the identity basis, where SOAP is Adam that starts a
// step late, with decoupled weight decay after the update.
TEST(SoapTest, UnpreconditionedVectorIsAdam) {
  const double lr = 0.01, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.1;
  torch::Tensor p = torch::randn({7});
  torch::Tensor expected = p.clone();
  Soap soap(OneGroup({p}), SoapOptions(lr).beta1(b1).beta2(b2).eps(eps).weight_decay(wd));
  torch::Tensor m = torch::zeros({7}), v = torch::zeros({7});
  for (int t = 0; t < 5; ++t) {
    SetGrads({p}, 10 + t);
    const torch::Tensor g = p.grad().clone();
    soap.step();
    if (t == 0) continue;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double size = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
    expected = (expected - size * m / (v.sqrt() + eps)) * (1 - lr * wd);
  }
  EXPECT_TRUE(torch::allclose(p, expected, 1e-6, 1e-7));
}

// Same-shaped parameters step together as one batch; each must move exactly as it would with
// an optimizer of its own, through first steps, refreshes and normalize_grads.
TEST(SoapTest, BatchedParametersMoveAsAlone) {
  torch::manual_seed(6);
  const SoapOptions options = SoapOptions(0.01)
                                  .precondition_frequency(2)
                                  .max_precond_dim(8)
                                  .precondition_1d(true)
                                  .normalize_grads(true);
  std::vector<torch::Tensor> together = {torch::randn({6, 4}), torch::randn({6, 4}),
                                         torch::randn({4}), torch::randn({4}),
                                         torch::randn({3, 12}), torch::randn({3, 12})};
  std::vector<torch::Tensor> alone;
  std::vector<std::unique_ptr<Soap>> singles;
  for (const torch::Tensor& p : together) {
    alone.push_back(p.clone());
    singles.push_back(std::make_unique<Soap>(OneGroup({alone.back()}), options));
  }
  Soap batched(OneGroup(together), options);
  for (int t = 0; t < 6; ++t) {
    SetGrads(together, 20 + t);
    for (size_t i = 0; i < alone.size(); ++i) alone[i].mutable_grad() = together[i].grad().clone();
    batched.step();
    for (const auto& single : singles) single->step();
  }
  for (size_t i = 0; i < together.size(); ++i) {
    EXPECT_TRUE(torch::allclose(together[i], alone[i], 0, 1e-6)) << i;
  }
}

// Save after some steps, load into a new optimizer over a copy of the parameters, and both
// continue through a basis refresh to the same bits.
TEST(SoapTest, SaveLoadContinuesBitIdentically) {
  torch::manual_seed(0);
  const SoapOptions options =
      SoapOptions(0.01).precondition_frequency(3).max_precond_dim(8).precondition_1d(true);
  ExpectSaveLoadContinuesBitIdentically(
      {torch::randn({6, 4}), torch::randn({4}), torch::randn({3, 12})},
      [&](const auto& p) { return std::make_unique<Soap>(OneGroup(p), options); },
      [](const auto& p) { return std::make_unique<Soap>(OneGroup(p), SoapOptions(1.0)); },
      /*before=*/5, /*after=*/4);
}

}  // namespace
}  // namespace ablate::train
