// The fused q/k/v projections against the eager modules and an fp64 reference. On the GPU, the
// rule of the kernel tests (flash-attention's): the node's largest error against fp64 is at
// most twice the eager bf16 path's own, for each output and gradient. Everywhere: without the
// node's conditions, the eager modules' result and graph.
#include "trainer_lib/model/fused_qkv.h"

#include <array>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer_lib/model/fused_kernels_testing.h"

namespace ablate::train {
namespace {

using kernel_test::Bf16Autocast;

constexpr char kNode[] = "FusedQkvProjection";
// Result::values in order.
const std::vector<std::string> kNames = {"q", "k", "v", "dx", "dwq", "dwk", "dwv"};

struct Projections {
  std::array<torch::nn::Linear, 3> layers;
};

// q: C -> 2 C, k and v: C -> C / 2 (Qwen3's grouped heads: twice as many query heads as
// key-value heads, head dim C / heads), on `device` in `dtype`.
Projections MakeProjections(int64_t c, const torch::Device& device, torch::Dtype dtype) {
  auto linear = [&](int64_t out) {
    torch::nn::Linear layer(torch::nn::LinearOptions(c, out).bias(false));
    layer->to(device, dtype);
    return layer;
  };
  return {{linear(2 * c), linear(c / 2), linear(c / 2)}};
}

// The three outputs and the gradients of sum(q * wq + k * wk + v * wv): x's, then each
// weight's; and the name of q's autograd node.
struct Result {
  std::vector<torch::Tensor> values;
  std::string node;
};

Result RunProjections(bool eager, Projections& p, const torch::Tensor& x0,
           const std::array<torch::Tensor, 3>& w) {
  for (auto& layer : p.layers) layer->zero_grad();
  torch::Tensor x = x0.detach().clone().requires_grad_(true);
  std::array<torch::Tensor, 3> out =
      eager ? std::array{p.layers[0](x), p.layers[1](x), p.layers[2](x)}
            : QkvProjections(x, *p.layers[0], *p.layers[1], *p.layers[2]);
  const std::string node = out[0].grad_fn() ? out[0].grad_fn()->name() : "";
  torch::Tensor loss = torch::zeros({}, w[0].options());
  for (size_t i = 0; i < 3; ++i) loss = loss + (out[i].to(w[i].scalar_type()) * w[i]).sum();
  loss.backward();
  Result r{{out[0].detach(), out[1].detach(), out[2].detach(), x.grad()}, node};
  for (auto& layer : p.layers) r.values.push_back(layer->weight.grad().clone());
  return r;
}

// The same in fp64 with nothing rounded: the reference both are judged against.
Result RunExact(const Projections& p, const torch::Tensor& x0,
                const std::array<torch::Tensor, 3>& w) {
  torch::Tensor x = x0.detach().to(torch::kFloat64).requires_grad_(true);
  std::vector<torch::Tensor> weights, out;
  torch::Tensor loss = torch::zeros({}, w[0].options());
  for (size_t i = 0; i < 3; ++i) {
    weights.push_back(p.layers[i]->weight.detach().to(torch::kFloat64).requires_grad_(true));
    out.push_back(x.matmul(weights[i].t()));
    loss = loss + (out[i] * w[i]).sum();
  }
  loss.backward();
  return {{out[0].detach(), out[1].detach(), out[2].detach(), x.grad(), weights[0].grad(),
           weights[1].grad(), weights[2].grad()},
          ""};
}

std::array<torch::Tensor, 3> LossWeights(const torch::Tensor& x, const Projections& p) {
  std::array<torch::Tensor, 3> w;
  for (size_t i = 0; i < 3; ++i) {
    std::vector<int64_t> sizes = x.sizes().vec();
    sizes.back() = p.layers[i]->weight.size(0);
    w[i] = torch::randn(sizes, x.options().dtype(torch::kFloat64));
  }
  return w;
}

TEST(FusedQkvTest, MatchesEagerWithinItsError) {
  ABLATE_REQUIRE_FUSED_KERNELS();
  torch::manual_seed(3);
  // Odd token counts and widths; bf16 inputs (the fused norm's) and fp32 ones (the eager
  // norm's); Qwen3-0.6B's width at 4,096 tokens.
  for (const auto& [tokens, c, dtype] :
       {std::tuple{37, 64, torch::kBFloat16}, std::tuple{111, 96, torch::kFloat32},
        std::tuple{4099, 200, torch::kBFloat16}, std::tuple{4096, 1024, torch::kBFloat16}}) {
    SCOPED_TRACE(::testing::Message() << tokens << " tokens, width " << c << ", " << dtype);
    Projections p = MakeProjections(c, torch::kCUDA, torch::kFloat32);
    torch::Tensor x = torch::randn({1, tokens, c}, torch::TensorOptions().device(torch::kCUDA))
                          .to(dtype);
    const std::array<torch::Tensor, 3> w = LossWeights(x, p);
    Result fused, eager;
    {
      Bf16Autocast autocast;
      kernel_test::PoisonAllocator();
      fused = RunProjections(/*eager=*/false, p, x, w);
      eager = RunProjections(/*eager=*/true, p, x, w);
    }
    EXPECT_NE(fused.node.find(kNode), std::string::npos) << fused.node;
    kernel_test::ExpectWithinTwiceEagerError(kNames, fused.values, eager.values,
                                             RunExact(p, x, w).values);
    for (size_t i = 0; i < kNames.size(); ++i) {
      EXPECT_TRUE(fused.values[i].is_contiguous()) << kNames[i];
    }
  }
}

// k and v outside the loss: their weights get no gradient, as eager's linear leaves them, and
// x's gradient is q's alone.
TEST(FusedQkvTest, AnOutputOutsideTheLossGivesItsWeightNoGradient) {
  ABLATE_REQUIRE_FUSED_KERNELS();
  torch::manual_seed(5);
  Projections p = MakeProjections(64, torch::kCUDA, torch::kFloat32);
  torch::Tensor x =
      torch::randn({2, 9, 64}, torch::TensorOptions().device(torch::kCUDA)).requires_grad_(true);
  Bf16Autocast autocast;
  const std::array<torch::Tensor, 3> out =
      QkvProjections(x, *p.layers[0], *p.layers[1], *p.layers[2]);
  out[0].to(torch::kFloat32).sum().backward();
  EXPECT_TRUE(p.layers[0]->weight.grad().defined());
  EXPECT_FALSE(p.layers[1]->weight.grad().defined());
  EXPECT_FALSE(p.layers[2]->weight.grad().defined());
  const torch::Tensor want = p.layers[0]->weight.to(torch::kBFloat16).sum(0).to(torch::kFloat32);
  EXPECT_TRUE(torch::allclose(x.grad()[0][0], want, 1e-2, 1e-2));
}

// Without the node's conditions (here: the CPU, or no autocast) the result is the eager
// modules', bit for bit, through their own autograd graph.
TEST(FusedQkvTest, FallsBackToTheEagerModules) {
  torch::manual_seed(4);
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA);
  for (const torch::Device& device : devices) {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      SCOPED_TRACE(::testing::Message() << device << " " << dtype);
      Projections p = MakeProjections(24, device, dtype);
      torch::Tensor x = torch::randn({2, 5, 24}, torch::TensorOptions().device(device)).to(dtype);
      const std::array<torch::Tensor, 3> w = LossWeights(x, p);
      const Result fused = RunProjections(/*eager=*/false, p, x, w);
      const Result eager = RunProjections(/*eager=*/true, p, x, w);
      EXPECT_EQ(fused.node.find(kNode), std::string::npos) << fused.node;
      EXPECT_EQ(fused.node, eager.node);
      kernel_test::ExpectBitIdentical(kNames, fused.values, eager.values);
    }
  }
}

}  // namespace
}  // namespace ablate::train
