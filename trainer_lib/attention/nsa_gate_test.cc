#include "trainer_lib/attention/nsa_gate.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "trainer_lib/attention/nsa_cuda.h"

namespace ablate::train {
namespace {

struct Result {
  torch::Tensor out, d_gates;
  std::vector<torch::Tensor> d_branches;
};

// The output and gradients of sum(out * weights) through the node, or through the eager
// products it replaces (fp32 arithmetic on fp32 copies of every input).
// node: 0 the eager products, else the node with chunks of `node` fp32 elements.
Result Combine(const torch::Tensor& gates, const std::vector<torch::Tensor>& branches,
               const torch::Tensor& weights, int64_t node) {
  torch::Tensor g = gates.detach().requires_grad_(true);
  std::vector<torch::Tensor> b;
  for (const torch::Tensor& x : branches) b.push_back(x.detach().requires_grad_(true));
  torch::Tensor out;
  if (node) {
    out = NsaGateCombine(g, b, torch::kBFloat16, node);
  } else {
    for (size_t c = 0; c < b.size(); ++c) {
      torch::Tensor term = g.to(torch::kFloat32).select(-1, static_cast<int64_t>(c)).unsqueeze(-1) *
                           b[c].to(torch::kFloat32);
      out = out.defined() ? out + term : term;
    }
    out = out.to(torch::kBFloat16);
  }
  (out.to(torch::kFloat32) * weights).sum().backward();
  Result r{out.detach(), g.grad(), {}};
  for (const torch::Tensor& x : b) r.d_branches.push_back(x.grad());
  return r;
}

void ExpectSame(const Result& node, const Result& eager, const char* what) {
  EXPECT_TRUE(torch::equal(node.out, eager.out)) << what << ": output";
  EXPECT_EQ(node.d_gates.scalar_type(), eager.d_gates.scalar_type()) << what;
  EXPECT_TRUE(torch::allclose(node.d_gates.to(torch::kFloat32), eager.d_gates.to(torch::kFloat32),
                              1e-5, 1e-5))
      << what << ": gates' gradient";
  ASSERT_EQ(node.d_branches.size(), eager.d_branches.size());
  for (size_t c = 0; c < node.d_branches.size(); ++c) {
    EXPECT_EQ(node.d_branches[c].scalar_type(), eager.d_branches[c].scalar_type()) << what;
    EXPECT_TRUE(torch::equal(node.d_branches[c], eager.d_branches[c]))
        << what << ": branch " << c << "'s gradient";
  }
}

TEST(NsaGateTest, MatchesTheEagerProductsItReplaces) {
  torch::manual_seed(3);
  const int64_t b = 2, h = 3, t = 37, d = 16;
  const torch::Tensor gates = torch::sigmoid(torch::randn({b, h, t, 3})).to(torch::kBFloat16);
  const torch::Tensor weights = torch::randn({b, h, t, d});
  // The kernels' path: compressed fp32 or bf16, selected and window bf16; without the window
  // its gate gets no gradient.
  const torch::Tensor cmp = torch::randn({b, h, t, d});
  const torch::Tensor slc = torch::randn({b, h, t, d}).to(torch::kBFloat16);
  const torch::Tensor swa = torch::randn({b, h, t, d}).to(torch::kBFloat16);
  for (const std::vector<torch::Tensor>& branches :
       {std::vector<torch::Tensor>{cmp, slc, swa},
        std::vector<torch::Tensor>{cmp.to(torch::kBFloat16), slc, swa},
        std::vector<torch::Tensor>{cmp, slc}}) {
    const Result eager = Combine(gates, branches, weights, 0);
    // One chunk, then 5 positions of B H D = 96 elements a chunk (37 = 7 x 5 + 2).
    for (int64_t chunk : {int64_t{1} << 27, int64_t{5} * 96}) {
      const Result node = Combine(gates, branches, weights, chunk);
      ExpectSame(node, eager, branches.size() == 3 ? "three branches" : "two branches");
      if (branches.size() == 2) {
        EXPECT_EQ(node.d_gates.select(-1, 2).abs().max().item<float>(), 0.0f);
      }
    }
  }
}

// On a GPU, bf16 branches take the kernels (trainer_lib/kernels/nsa_gate.h): their products
// fuse into FMAs and their dot products sum in another order, so the output and the gates'
// gradient may differ from eager's by a rounding in their dtype. The branches' gradients, one
// product each, are the same bits. Gates come contiguous and as the model makes them (a
// transposed view of their [B, T, H, 3] projection); D 128, and 80, which leaves lanes idle in a
// row's last pass.
TEST(NsaGateTest, KernelsOnCudaMatchTheEagerProducts) {
  if (!NsaKernelsEnabled() || !torch::cuda::is_available()) {
    GTEST_SKIP() << "needs the NSA kernels (nvcc and LibTorch with CUDA) and a GPU";
  }
  torch::manual_seed(5);
  const int64_t b = 1, h = 4, t = 1001;
  auto bf16 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  // Within one rounding of the dtype (2^-8 relative for bf16 after round-to-nearest, doubled),
  // plus `spread` for sums whose terms cancel: an fp32 sum of D terms in another order may differ
  // by about D 2^-24 times the sum of their magnitudes (the gates' gradient, whose D terms
  // d_out * branch sum near zero for some rows; seen at D 80).
  auto close = [](const torch::Tensor& x, const torch::Tensor& y, double relative,
                  const torch::Tensor& spread = {}) {
    const torch::Tensor x32 = x.to(torch::kFloat32), y32 = y.to(torch::kFloat32);
    torch::Tensor bound = y32.abs() * relative + 1e-6;
    if (spread.defined()) bound = bound + spread;
    return ((x32 - y32).abs() <= bound).all().item<bool>();
  };
  // 16-byte chunks by teams of 16 lanes (2 rows a warp) and of 10 of 16 lanes; bf16 pairs by
  // teams of 4 lanes (8 rows a warp) and of 1 lane (32 rows a warp, fewer lanes than gates).
  for (int64_t d : {128, 80, 6, 2}) {
    const torch::Tensor weights = torch::randn({b, h, t, d}, bf16.dtype(torch::kFloat32));
    const std::vector<torch::Tensor> three = {torch::randn({b, h, t, d}, bf16),
                                              torch::randn({b, h, t, d}, bf16),
                                              torch::randn({b, h, t, d}, bf16)};
    for (bool transposed : {false, true}) {
      for (torch::ScalarType gate_dtype : {torch::kBFloat16, torch::kFloat32}) {
        const torch::Tensor projected = torch::sigmoid(torch::randn({b, t, h, 3}, bf16));
        const torch::Tensor gates =
            (transposed ? projected.transpose(1, 2) : projected.transpose(1, 2).contiguous())
                .to(gate_dtype);
        for (size_t count : {size_t{2}, size_t{3}}) {
          const std::vector<torch::Tensor> branches(three.begin(), three.begin() + count);
          const std::string what = std::to_string(count) + " branches, D " + std::to_string(d) +
                                   ", gates " + std::string(c10::toString(gate_dtype)) +
                                   (transposed ? " transposed" : " contiguous");
          ASSERT_TRUE(NsaGateKernelTakes(gates, branches, torch::kBFloat16)) << what;
          const Result eager = Combine(gates, branches, weights, 0);
          const Result node = Combine(gates, branches, weights, int64_t{1} << 27);
          EXPECT_TRUE(close(node.out, eager.out, 1.0 / 128)) << what << ": output";
          EXPECT_EQ(node.d_gates.scalar_type(), gate_dtype) << what;
          // The gates' gradient: a dot product of d_out (the weights in bf16) and each branch.
          std::vector<torch::Tensor> magnitudes;
          for (const torch::Tensor& x : branches) {
            magnitudes.push_back((weights.to(torch::kBFloat16).to(torch::kFloat32).abs() *
                                  x.to(torch::kFloat32).abs())
                                     .sum(-1));
          }
          if (count == 2) magnitudes.push_back(torch::zeros_like(magnitudes[0]));
          const torch::Tensor spread = torch::stack(magnitudes, -1) * (double(d) / (1 << 24));
          EXPECT_TRUE(close(node.d_gates, eager.d_gates,
                            gate_dtype == torch::kFloat32 ? 1e-4 : 1.0 / 128, spread))
              << what << ": gates' gradient";
          for (size_t c = 0; c < count; ++c) {
            EXPECT_TRUE(torch::equal(node.d_branches[c], eager.d_branches[c]))
                << what << ": branch " << c << "'s gradient";
          }
          if (count == 2) {
            EXPECT_EQ(node.d_gates.select(-1, 2).abs().max().item<float>(), 0.0f) << what;
          }
        }
      }
    }
  }
}

// Where the kernels cannot take the inputs, the node says so and its eager chunks run.
TEST(NsaGateTest, KernelsRefuseWhatTheyCannotRead) {
  const torch::Tensor gates = torch::rand({1, 2, 5, 3});
  const torch::Tensor branch = torch::rand({1, 2, 5, 8}).to(torch::kBFloat16);
  // The CPU, and a build or run without the kernels, never take them.
  EXPECT_FALSE(NsaGateKernelTakes(gates, {branch}, torch::kBFloat16));
  if (!NsaKernelsEnabled() || !torch::cuda::is_available()) return;
  const torch::Tensor g = gates.cuda(), x = branch.cuda();
  EXPECT_TRUE(NsaGateKernelTakes(g, {x}, torch::kBFloat16));
  EXPECT_FALSE(NsaGateKernelTakes(g, {x}, torch::kFloat32)) << "an fp32 output";
  EXPECT_FALSE(NsaGateKernelTakes(g, {x.to(torch::kFloat32)}, torch::kBFloat16)) << "fp32";
  EXPECT_FALSE(NsaGateKernelTakes(g, {x.transpose(2, 3)}, torch::kBFloat16)) << "a view";
  EXPECT_FALSE(NsaGateKernelTakes(g, {x.narrow(3, 0, 7).contiguous()}, torch::kBFloat16))
      << "odd D";
  EXPECT_FALSE(NsaGateKernelTakes(g.narrow(2, 0, 0), {x.narrow(2, 0, 0)}, torch::kBFloat16))
      << "no position";
}

TEST(NsaGateTest, RejectsBranchesThatDoNotMatchTheGates) {
  const torch::Tensor gates = torch::rand({1, 2, 5, 3});
  EXPECT_THROW(NsaGateCombine(gates, {torch::rand({1, 2, 4, 8})}, torch::kFloat32), c10::Error);
  EXPECT_THROW(NsaGateCombine(gates, std::vector<torch::Tensor>(4, torch::rand({1, 2, 5, 8})),
                              torch::kFloat32),
               c10::Error);
}

}  // namespace
}  // namespace ablate::train
