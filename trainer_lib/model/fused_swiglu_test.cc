// The fused SwiGLU MLP against the eager modules and an fp64 reference. On the GPU, the rule
// (flash-attention's): the node's largest error against fp64 is at most twice the eager bf16
// path's own, for the output and for every gradient, with outputs in NaN-poisoned memory.
// Everywhere: without the node's conditions, the eager modules' result and graph.
#include "trainer_lib/model/fused_swiglu.h"

#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer_lib/model/fused_kernels_testing.h"

namespace ablate::train {
namespace {

using kernel_test::Bf16Autocast;
using kernel_test::PoisonAllocator;

constexpr char kNode[] = "FusedSwiGluMlp";

struct Mlp {
  torch::nn::Linear gate, up, down;
};

Mlp MakeMlp(int64_t hidden, int64_t intermediate, const torch::Device& device) {
  auto linear = [&](int64_t in, int64_t out) {
    torch::nn::Linear layer(torch::nn::LinearOptions(in, out).bias(false));
    layer->to(device);
    return layer;
  };
  return {linear(hidden, intermediate), linear(hidden, intermediate), linear(intermediate, hidden)};
}

// out, then the gradients of x and of the gate, up and down weights (kNames' order); and the
// name of out's autograd node.
struct Result {
  std::vector<torch::Tensor> values;
  std::string node;
};

const std::vector<std::string> kNames = {"out", "dx", "dgate", "dup", "ddown"};

// out = SwiGluMlp(x), or the eager modules, and the gradients of sum(out * w).
Result RunMlp(bool eager, Mlp& m, const torch::Tensor& x0, const torch::Tensor& w) {
  for (auto* layer : {&m.gate, &m.up, &m.down}) (*layer)->zero_grad();
  torch::Tensor x = x0.detach().clone().requires_grad_(true);
  torch::Tensor out =
      eager ? m.down(torch::silu(m.gate(x)) * m.up(x)) : SwiGluMlp(x, *m.gate, *m.up, *m.down);
  const std::string node = out.grad_fn() ? out.grad_fn()->name() : "";
  (out.to(w.scalar_type()) * w).sum().backward();
  return {{out.detach(), x.grad(), m.gate->weight.grad().clone(), m.up->weight.grad().clone(),
           m.down->weight.grad().clone()},
          node};
}

// The same in fp64 with nothing rounded: the reference both are judged against.
Result RunExact(const Mlp& m, const torch::Tensor& x0, const torch::Tensor& w) {
  auto leaf = [](const torch::Tensor& t) {
    return t.detach().to(torch::kFloat64).requires_grad_(true);
  };
  torch::Tensor x = leaf(x0), wg = leaf(m.gate->weight), wu = leaf(m.up->weight),
                wd = leaf(m.down->weight);
  torch::Tensor g = x.matmul(wg.t());
  torch::Tensor out = (g * torch::sigmoid(g) * x.matmul(wu.t())).matmul(wd.t());
  (out * w).sum().backward();
  return {{out.detach(), x.grad(), wg.grad(), wu.grad(), wd.grad()}, ""};
}

TEST(FusedSwiGluTest, MatchesEagerWithinItsError) {
  ABLATE_REQUIRE_FUSED_KERNELS();
  torch::manual_seed(1);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  // Odd token counts; intermediate sizes the activation kernels take in packs of 8 (1,000, and
  // Qwen3-0.6B's 3,072 beside its hidden size 1,024) and one element at a time (999, 3,071,
  // the latter with more elements than a launch has threads, 2^22, so that threads take
  // several); bf16 inputs (the fused norm's) and fp32 ones (the eager norm's).
  for (const auto& [tokens, hidden, intermediate, dtype] :
       {std::tuple{37, 64, 1000, torch::kBFloat16}, std::tuple{111, 96, 3072, torch::kFloat32},
        std::tuple{37, 64, 999, torch::kBFloat16}, std::tuple{4098, 128, 3071, torch::kBFloat16},
        std::tuple{4096, 1024, 3072, torch::kBFloat16}}) {
    SCOPED_TRACE(::testing::Message()
                 << tokens << " tokens, " << hidden << " -> " << intermediate << ", " << dtype);
    Mlp m = MakeMlp(hidden, intermediate, torch::kCUDA);
    torch::Tensor x = torch::randn({1, tokens, hidden}, cuda).to(dtype);
    torch::Tensor w = torch::randn({1, tokens, hidden}, cuda.dtype(torch::kFloat64));
    Result fused, eager;
    {
      Bf16Autocast autocast;
      PoisonAllocator();
      fused = RunMlp(/*eager=*/false, m, x, w);
      eager = RunMlp(/*eager=*/true, m, x, w);
    }
    EXPECT_NE(fused.node.find(kNode), std::string::npos) << fused.node;
    ASSERT_EQ(fused.values[0].scalar_type(), torch::kBFloat16);
    ASSERT_EQ(fused.values[0].sizes(), x.sizes());
    ASSERT_EQ(fused.values[1].scalar_type(), dtype);
    kernel_test::ExpectWithinTwiceEagerError(kNames, fused.values, eager.values,
                                             RunExact(m, x, w).values);
  }
}

// Without the node's conditions (here: the CPU, or no autocast) the result is the eager
// modules', bit for bit, through their own autograd graph.
TEST(FusedSwiGluTest, FallsBackToTheEagerModules) {
  torch::manual_seed(2);
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.push_back(torch::kCUDA);
  for (const torch::Device& device : devices) {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      SCOPED_TRACE(::testing::Message() << device << " " << dtype);
      Mlp m = MakeMlp(24, 40, device);
      for (auto* layer : {&m.gate, &m.up, &m.down}) (*layer)->to(dtype);
      torch::Tensor x = torch::randn({2, 5, 24}, torch::TensorOptions().device(device)).to(dtype);
      torch::Tensor w = torch::randn({2, 5, 24}, x.options().dtype(torch::kFloat64));
      const Result fused = RunMlp(/*eager=*/false, m, x, w);
      const Result eager = RunMlp(/*eager=*/true, m, x, w);
      EXPECT_EQ(fused.node.find(kNode), std::string::npos) << fused.node;
      EXPECT_EQ(fused.node, eager.node);
      kernel_test::ExpectBitIdentical(kNames, fused.values, eager.values);
    }
  }
}

}  // namespace
}  // namespace ablate::train
