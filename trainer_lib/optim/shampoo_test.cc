#include "trainer_lib/optim/shampoo.h"

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

// The update's norm is the graft's (RMSprop's) whatever the preconditioner does: with zero
// momentum and no Nesterov, the first step moves a matrix by lr * ||G / (|G| + eps)||.
TEST(ShampooTest, FirstStepHasTheGraftsNorm) {
  torch::manual_seed(1);
  torch::Tensor w = torch::randn({6, 4}, torch::kF64);
  const torch::Tensor before = w.clone();
  Shampoo shampoo(OneGroup({w}),
                  ShampooOptions(0.1).nesterov(false).precondition_frequency(1)
                      .start_preconditioning_step(1));
  SetGrads({w}, 2);
  const torch::Tensor g = w.grad().clone();
  shampoo.step();
  const double graft_norm =
      torch::linalg_vector_norm(g / ((0.001 * g * g).sqrt() + 1e-10)).item<double>();
  EXPECT_NEAR(torch::linalg_vector_norm(before - w).item<double>(), 0.1 * graft_norm, 1e-9);
}

TEST(ShampooTest, SaveLoadContinuesBitIdentically) {
  torch::manual_seed(0);
  const ShampooOptions options = ShampooOptions(0.01)
                                     .precondition_frequency(2)
                                     .start_preconditioning_step(4)
                                     .max_precond_dim(8)
                                     .weight_decay(0.1);
  // Across the start step and two root refreshes.
  ExpectSaveLoadContinuesBitIdentically(
      {torch::randn({6, 4}), torch::randn({4}), torch::randn({3, 12})},
      [&](const auto& p) { return std::make_unique<Shampoo>(OneGroup(p), options); },
      [](const auto& p) { return std::make_unique<Shampoo>(OneGroup(p), ShampooOptions(1.0)); },
      /*before=*/3, /*after=*/5);
}

}  // namespace
}  // namespace ablate::train
