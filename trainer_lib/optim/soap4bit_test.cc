#include "trainer_lib/optim/soap4bit.h"

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

TEST(Soap4bitTest, StateIsAtMostEightBytesPerParameter) {
  // Square, 1:3, 3:1, a vector and one dimension above max_precond_dim.
  const std::vector<torch::Tensor> params = {torch::randn({96, 96}), torch::randn({64, 192}),
                                             torch::randn({192, 64}), torch::randn({64}),
                                             torch::randn({300, 32})};
  for (const torch::Tensor& p : params) {
    torch::Tensor q = p.clone();
    Soap4bit soap(OneGroup({q}), SoapOptions().max_precond_dim(256));
    for (int t = 0; t < 3; ++t) {
      SetGrads({q}, t);
      soap.step();
    }
    const double per_param = static_cast<double>(soap.StateBytes()) / q.numel();
    EXPECT_LE(per_param, 8.0) << q.sizes();
    EXPECT_GT(per_param, 1.0) << q.sizes();  // moments at least: the state is all counted
  }
}

TEST(Soap4bitTest, SaveLoadContinuesBitIdentically) {
  torch::manual_seed(0);
  const SoapOptions options = SoapOptions(0.01).precondition_frequency(3).max_precond_dim(8);
  ExpectSaveLoadContinuesBitIdentically(
      {torch::randn({6, 4}), torch::randn({4}), torch::randn({3, 12})},
      [&](const auto& p) { return std::make_unique<Soap4bit>(OneGroup(p), options); },
      [](const auto& p) { return std::make_unique<Soap4bit>(OneGroup(p), SoapOptions(1.0)); },
      /*before=*/5, /*after=*/4);
}

}  // namespace
}  // namespace ablate::train
