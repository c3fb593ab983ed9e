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

// Both options off the reference's path, by hand over two steps on a vector (grafted only):
// v_hat = v / (1 - beta2^t) makes the graft Adam's denominator, and the momentum is an EMA,
// m_t = beta1 m_(t-1) + (1 - beta1) g_graft, so the steps are Adam's without m's correction.
TEST(ShampooTest, BiasCorrectedGraftAndMovingAverageMomentumAreAdamLike) {
  const double lr = 0.1, beta1 = 0.9, beta2 = 0.99, eps = 1e-10;
  torch::manual_seed(2);
  torch::Tensor w = torch::randn({5}, torch::kF64);
  const torch::Tensor w0 = w.clone();
  Shampoo shampoo(OneGroup({w}), ShampooOptions(lr)
                                     .beta1(beta1)
                                     .beta2(beta2)
                                     .nesterov(false)
                                     .moving_average_for_momentum(true)
                                     .graft_bias_correction(true));
  SetGrads({w}, 3);
  const torch::Tensor g1 = w.grad().clone();
  shampoo.step();
  // The first step is lr (1 - beta1) sign(g) but for eps: v_hat is g^2 exactly.
  const torch::Tensor m1 = (1 - beta1) * g1 / (g1.abs() + eps);
  EXPECT_TRUE(torch::allclose(w0 - w, lr * m1, 0, 1e-15));
  SetGrads({w}, 4);
  const torch::Tensor g2 = w.grad().clone();
  shampoo.step();
  const torch::Tensor v2 = beta2 * (1 - beta2) * g1 * g1 + (1 - beta2) * g2 * g2;
  const torch::Tensor graft2 = g2 / ((v2 / (1 - beta2 * beta2)).sqrt() + eps);
  const torch::Tensor m2 = beta1 * m1 + (1 - beta1) * graft2;
  EXPECT_TRUE(torch::allclose(w0 - w, lr * (m1 + m2), 0, 1e-15));
}

// With either root (use_svd travels in the checkpoint: the fresh optimizer has the default).
TEST(ShampooTest, SaveLoadContinuesBitIdentically) {
  for (const bool use_svd : {true, false}) {
    SCOPED_TRACE(use_svd ? "eigh" : "newton");
    torch::manual_seed(0);
    const ShampooOptions options = ShampooOptions(0.01)
                                       .precondition_frequency(2)
                                       .start_preconditioning_step(4)
                                       .max_precond_dim(8)
                                       .weight_decay(0.1)
                                       .moving_average_for_momentum(true)
                                       .graft_bias_correction(true)
                                       .use_svd(use_svd);
    // Across the start step and two root refreshes.
    ExpectSaveLoadContinuesBitIdentically(
        {torch::randn({6, 4}), torch::randn({4}), torch::randn({3, 12})},
        [&](const auto& p) { return std::make_unique<Shampoo>(OneGroup(p), options); },
        [](const auto& p) { return std::make_unique<Shampoo>(OneGroup(p), ShampooOptions(1.0)); },
        /*before=*/3, /*after=*/5);
  }
}

// use_svd off takes the roots by Newton: on the same gradients the two differ, by the ridge
// and the iteration's 1e-3 residual, yet not by much.
TEST(ShampooTest, NewtonRootsStayCloseToEigh) {
  torch::manual_seed(5);
  const torch::Tensor start = torch::randn({6, 4}, torch::kF64);
  std::vector<torch::Tensor> finals;
  for (const bool use_svd : {true, false}) {
    torch::Tensor w = start.clone();
    Shampoo shampoo(
        OneGroup({w}),
        ShampooOptions(0.01).precondition_frequency(1).start_preconditioning_step(1).use_svd(
            use_svd));
    for (int step = 0; step < 4; ++step) {
      SetGrads({w}, 10 + step);
      shampoo.step();
    }
    finals.push_back(w - start);
  }
  EXPECT_FALSE(torch::equal(finals[0], finals[1]));
  EXPECT_TRUE(
      torch::allclose(finals[0], finals[1], 0.0, 0.05 * finals[0].abs().max().item<double>()));
}

}  // namespace
}  // namespace ablate::train
