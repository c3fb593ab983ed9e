// The fused SwiGLU activation against eager silu(gate) * up and an fp64 reference. On the GPU,
// the rule (flash-attention's): the kernels' largest error against fp64 is at most twice the
// eager bf16 path's own, for the output and both gradients, with outputs in NaN-poisoned
// memory. Everywhere: without the kernels' conditions, the eager expression exactly.
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
using kernel_test::MaxError;
using kernel_test::PoisonAllocator;

struct Result {
  torch::Tensor y, dgate, dup;
  std::string node;  // the name of y's autograd node
};

// y = SwiGluActivation(gate, up), or eager's expression, and the gradients of sum(y * w).
Result RunCopies(bool eager, const torch::Tensor& gate0, const torch::Tensor& up0,
                 const torch::Tensor& w) {
  torch::Tensor gate = gate0.detach().clone().requires_grad_(true);
  torch::Tensor up = up0.detach().clone().requires_grad_(true);
  torch::Tensor y = eager ? torch::silu(gate) * up : SwiGluActivation(gate, up);
  const std::string node = y.grad_fn() ? y.grad_fn()->name() : "";
  (y.to(w.scalar_type()) * w).sum().backward();
  return {y.detach(), gate.grad(), up.grad(), node};
}

// The same in fp64 with nothing rounded: the reference both are judged against.
Result RunExact(const torch::Tensor& gate0, const torch::Tensor& up0, const torch::Tensor& w) {
  torch::Tensor gate = gate0.detach().to(torch::kFloat64).requires_grad_(true);
  torch::Tensor up = up0.detach().to(torch::kFloat64).requires_grad_(true);
  torch::Tensor y = gate * torch::sigmoid(gate) * up;
  (y * w).sum().backward();
  return {y.detach(), gate.grad(), up.grad(), ""};
}

TEST(FusedSwiGluTest, MatchesEagerWithinItsError) {
  ABLATE_REQUIRE_FUSED_KERNELS();
  torch::manual_seed(1);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  // Odd row counts; widths of 8-element packs (1,000 and Qwen3-0.6B's 3,072) and widths the
  // kernels take one element at a time (999, 3,071). The last shape has more elements than a
  // launch has threads (2^22), so that threads take several.
  for (const auto& shape : std::vector<std::vector<int64_t>>{
           {37, 1000}, {37, 3072}, {3, 37, 999}, {37, 3071}, {2, 2049, 3072}, {2, 2049, 3071}}) {
    SCOPED_TRACE(::testing::Message() << "shape " << torch::IntArrayRef(shape));
    // gate spread over silu's curved part and both tails; up and the gradient of unit scale.
    torch::Tensor gate = (4 * torch::randn(shape, cuda)).to(torch::kBFloat16);
    torch::Tensor up = torch::randn(shape, cuda).to(torch::kBFloat16);
    torch::Tensor w = torch::randn(shape, cuda.dtype(torch::kFloat64));
    Result fused, eager;
    {
      Bf16Autocast autocast;
      PoisonAllocator();
      fused = RunCopies(/*eager=*/false, gate, up, w);
      eager = RunCopies(/*eager=*/true, gate, up, w);
    }
    EXPECT_NE(fused.node.find("FusedSwiGlu"), std::string::npos) << fused.node;
    ASSERT_EQ(fused.y.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(fused.y.sizes(), gate.sizes());
    const Result exact = RunExact(gate, up, w);
    for (const auto& [name, a, b, c] : {std::tuple{"y", fused.y, eager.y, exact.y},
                                        std::tuple{"dgate", fused.dgate, eager.dgate, exact.dgate},
                                        std::tuple{"dup", fused.dup, eager.dup, exact.dup}}) {
      ASSERT_EQ(a.scalar_type(), torch::kBFloat16) << name;
      ASSERT_TRUE(torch::isfinite(a).all().item<bool>()) << name << " has NaN or Inf";
      const double fused_error = MaxError(a, c);
      const double eager_error = MaxError(b, c);
      EXPECT_LE(fused_error, 2 * eager_error + 1e-6) << name << ": eager " << eager_error;
    }
  }
}

// gate and up as given (no copy), and the gradients of sum(y * w) for them.
Result RunInPlace(const torch::Tensor& gate, const torch::Tensor& up, const torch::Tensor& w) {
  gate.requires_grad_(true);
  up.requires_grad_(true);
  torch::Tensor y = SwiGluActivation(gate, up);
  const torch::autograd::variable_list grads =
      torch::autograd::grad({(y.to(w.scalar_type()) * w).sum()}, {gate, up});
  return {y.detach(), grads[0], grads[1], y.grad_fn()->name()};
}

// Inputs whose rows do not start on 16-byte boundaries (a view at an odd offset) take the
// kernels' one-element path; the same values, aligned, take packs of 8. Both give the same bits.
TEST(FusedSwiGluTest, UnalignedInputsGiveTheAlignedBits) {
  ABLATE_REQUIRE_FUSED_KERNELS();
  torch::manual_seed(2);
  auto cuda = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  const int64_t rows = 37, cols = 1024;
  torch::Tensor gate = (4 * torch::randn({rows, cols}, cuda)).to(torch::kBFloat16);
  torch::Tensor up = torch::randn({rows, cols}, cuda);
  torch::Tensor w = torch::randn({rows, cols}, cuda.dtype(torch::kFloat64));
  auto shifted = [&](const torch::Tensor& t) {
    torch::Tensor view = torch::empty({rows * cols + 1}, cuda).narrow(0, 1, rows * cols);
    view.copy_(t.flatten());
    return view.view({rows, cols});
  };
  Bf16Autocast autocast;
  PoisonAllocator();
  const Result packed = RunInPlace(gate.clone(), up.clone(), w);
  const Result single = RunInPlace(shifted(gate), shifted(up), w);
  EXPECT_NE(single.node.find("FusedSwiGlu"), std::string::npos) << single.node;
  EXPECT_TRUE(torch::equal(packed.y, single.y));
  EXPECT_TRUE(torch::equal(packed.dgate, single.dgate));
  EXPECT_TRUE(torch::equal(packed.dup, single.dup));
  EXPECT_TRUE(torch::isfinite(single.y).all().item<bool>());
}

// Without the kernels' conditions (here: fp32 inputs, or no autocast, or the CPU) the result
// is eager's expression, bit for bit, with eager's autograd graph.
TEST(FusedSwiGluTest, FallsBackToEagerExactly) {
  torch::manual_seed(3);
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.push_back(torch::kCUDA);
  for (const torch::Device& device : devices) {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      SCOPED_TRACE(::testing::Message() << device << " " << dtype);
      auto options = torch::TensorOptions().device(device).dtype(dtype);
      torch::Tensor gate = 4 * torch::randn({5, 37}, options);
      torch::Tensor up = torch::randn({5, 37}, options);
      torch::Tensor w = torch::randn({5, 37}, options.dtype(torch::kFloat64));
      const Result fused = RunCopies(false, gate, up, w);
      const Result eager = RunCopies(true, gate, up, w);
      EXPECT_EQ(fused.node, eager.node);
      EXPECT_TRUE(torch::equal(fused.y, eager.y));
      EXPECT_TRUE(torch::equal(fused.dgate, eager.dgate));
      EXPECT_TRUE(torch::equal(fused.dup, eager.dup));
    }
  }
}

}  // namespace
}  // namespace ablate::train
