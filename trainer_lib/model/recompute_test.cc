#include "trainer_lib/model/recompute.h"

#include <utility>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

// x -> sum(tanh(x W)): enough intermediates that a wrong input in the rerun shows.
struct Fixture {
  torch::Tensor w = torch::randn({6, 6}).requires_grad_(true);
  torch::Tensor x0 = torch::randn({4, 6});
  torch::Tensor Apply(const torch::Tensor& x) const { return torch::tanh(x.matmul(w)); }
  // The gradients of sum(Apply(x0)) computed directly, x's then w's; w's gradient reset.
  std::pair<torch::Tensor, torch::Tensor> DirectGradients() {
    torch::Tensor x = x0.clone().requires_grad_(true);
    Apply(x).sum().backward();
    std::pair<torch::Tensor, torch::Tensor> grads = {x.grad(), w.grad().clone()};
    w.mutable_grad().reset();
    return grads;
  }
};

TEST(RecomputeTest, GradientsMatchTheDirectPassWithTheInputOnDeviceOrOffloaded) {
  torch::manual_seed(7);
  Fixture f;
  const auto [dx, dw] = f.DirectGradients();
  for (bool offload : {false, true}) {
    f.w.mutable_grad().reset();
    torch::Tensor y = f.x0.clone().requires_grad_(true);
    RecomputeInBackward([&f](const torch::Tensor& in) { return f.Apply(in); }, y, offload)
        .sum()
        .backward();
    EXPECT_TRUE(torch::allclose(y.grad(), dx)) << "offload " << offload;
    EXPECT_TRUE(torch::allclose(f.w.grad(), dw)) << "offload " << offload;
  }
}

// Offloaded, backward reads the copy forward made, not the input tensor: changing the input
// in place afterwards changes nothing (kept on the device, autograd refuses the changed input).
TEST(RecomputeTest, AnOffloadedInputIsACopyMadeInForward) {
  torch::manual_seed(8);
  Fixture f;
  const torch::Tensor dw = f.DirectGradients().second;
  for (bool offload : {false, true}) {
    f.w.mutable_grad().reset();
    torch::Tensor input = f.x0.clone().requires_grad_(true);
    torch::Tensor y = input * 1.0;  // not a leaf: it may change in place under autograd
    torch::Tensor out =
        RecomputeInBackward([&f](const torch::Tensor& in) { return f.Apply(in); }, y, offload);
    {
      torch::NoGradGuard no_grad;
      y.mul_(3.0);
    }
    if (offload) {
      out.sum().backward();
      EXPECT_TRUE(torch::allclose(f.w.grad(), dw));
    } else {
      EXPECT_THROW(out.sum().backward(), c10::Error);
    }
  }
}

}  // namespace
}  // namespace ablate::train
