#include "trainer_lib/optim/shampoo.h"

#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

void SetGrads(const std::vector<torch::Tensor>& params, int64_t seed) {
  torch::manual_seed(seed);
  for (const torch::Tensor& p : params) p.mutable_grad() = torch::randn_like(p);
}

// The update's norm is the graft's (RMSprop's) whatever the preconditioner does: with zero
// momentum and no Nesterov, the first step moves a matrix by lr * ||G / (|G| + eps)||.
TEST(ShampooTest, FirstStepHasTheGraftsNorm) {
  torch::manual_seed(1);
  torch::Tensor w = torch::randn({6, 4}, torch::kF64);
  const torch::Tensor before = w.clone();
  Shampoo shampoo({torch::optim::OptimizerParamGroup({w})},
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
  const std::vector<torch::Tensor> a = {torch::randn({6, 4}), torch::randn({4}),
                                        torch::randn({3, 12})};
  const ShampooOptions options = ShampooOptions(0.01)
                                     .precondition_frequency(2)
                                     .start_preconditioning_step(4)
                                     .max_precond_dim(8)
                                     .weight_decay(0.1);
  Shampoo first({torch::optim::OptimizerParamGroup(a)}, options);
  for (int t = 0; t < 3; ++t) {
    SetGrads(a, 100 + t);
    first.step();
  }
  torch::serialize::OutputArchive out;
  first.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);

  std::vector<torch::Tensor> b;
  for (const torch::Tensor& p : a) b.push_back(p.clone());
  Shampoo second({torch::optim::OptimizerParamGroup(b)}, ShampooOptions(1.0));
  torch::serialize::InputArchive in;
  std::istringstream read(bytes.str());
  in.load_from(read);
  second.load(in);
  for (int t = 3; t < 8; ++t) {  // across the start step and two root refreshes
    SetGrads(a, 100 + t);
    SetGrads(b, 100 + t);
    first.step();
    second.step();
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

}  // namespace
}  // namespace ablate::train
