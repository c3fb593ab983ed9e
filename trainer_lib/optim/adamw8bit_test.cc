// The 8-bit AdamW kernel (trainer_lib/kernels/adamw8bit.h) against the eager LibTorch path of
// the same optimizer on the CPU, which tests/oracle checks against torchao. The two round the
// same operations in the same order, but ATen's CPU and CUDA builds may contract or vectorize
// a product differently, so a moment can land on the other side of a quantization midpoint:
// the test allows such flips on a small share of elements, and nothing more.
#include "trainer_lib/optim/adamw8bit.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <utility>
#include <vector>

#include "trainer_lib/device/fused_kernels.h"

namespace ablate::train {
namespace {

// The share of elements of `a` and `b` (same shape) further apart than `tolerance`.
double ShareApart(const torch::Tensor& a, const torch::Tensor& b, double tolerance) {
  const torch::Tensor apart = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs() > tolerance;
  return apart.to(torch::kDouble).mean().item<double>();
}

class FusedAdamW8bitTest : public testing::TestWithParam<torch::Dtype> {};

TEST_P(FusedAdamW8bitTest, KernelMatchesEagerPath) {
  if (!FusedKernelsEnabled() || !torch::cuda::is_available()) {
    GTEST_SKIP() << "needs the CUDA kernels (nvcc and LibTorch with CUDA) and a GPU";
  }
  const torch::Dtype dtype = GetParam();
  torch::manual_seed(7);
  // Quantized (a multiple of 256, at least 4,096 elements), the smallest quantized, and one
  // that keeps fp32 moments.
  const std::vector<std::vector<int64_t>> shapes = {{96, 512}, {16, 256}, {1000}};
  std::vector<torch::Tensor> cpu;
  std::vector<torch::Tensor> gpu;
  for (const auto& shape : shapes) {
    cpu.push_back(torch::randn(shape).to(dtype).requires_grad_());
    gpu.push_back(cpu.back().detach().to(torch::kCUDA).requires_grad_());
  }
  const auto options = torch::optim::AdamWOptions(1e-2).weight_decay(0.1).betas({0.9, 0.95});
  AdamW8bit cpu_optimizer({torch::optim::OptimizerParamGroup(
      cpu, std::make_unique<torch::optim::AdamWOptions>(options))});
  AdamW8bit gpu_optimizer({torch::optim::OptimizerParamGroup(
      gpu, std::make_unique<torch::optim::AdamWOptions>(options))});
  for (int step = 0; step < 6; ++step) {
    for (size_t i = 0; i < cpu.size(); ++i) {
      // Gradients of mixed scales, so blocks' scales differ.
      const torch::Tensor grad = torch::randn(cpu[i].sizes()) * torch::rand(cpu[i].sizes()) * 3;
      cpu[i].mutable_grad() = grad.to(dtype);
      gpu[i].mutable_grad() = grad.to(dtype).to(torch::kCUDA);
    }
    cpu_optimizer.step();
    gpu_optimizer.step();
  }
  // One ulp of the parameter's dtype at magnitude 1 to 4, and a code flip's effect on it.
  const double ulp = dtype == torch::kBFloat16 ? 0.032 : 5e-7;
  for (size_t i = 0; i < cpu.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "parameter " << i << " of " << cpu[i].sizes());
    const torch::Tensor on_gpu = gpu[i].detach().cpu();
    EXPECT_LE(ShareApart(cpu[i].detach(), on_gpu, ulp), 0.01);
    EXPECT_LE(
        (cpu[i].detach().to(torch::kDouble) - on_gpu.to(torch::kDouble)).abs().max().item<double>(),
        0.05);  // a few code flips over 6 steps of lr 1e-2
    const auto& cs = static_cast<const AdamW8bitParamState&>(
        *cpu_optimizer.state().at(cpu[i].unsafeGetTensorImpl()));
    const auto& gs = static_cast<const AdamW8bitParamState&>(
        *gpu_optimizer.state().at(gpu[i].unsafeGetTensorImpl()));
    EXPECT_EQ(gs.step(), 6);
    for (const auto& [c, g] :
         {std::pair{cs.exp_avg(), gs.exp_avg()}, std::pair{cs.exp_avg_sq(), gs.exp_avg_sq()}}) {
      ASSERT_EQ(c.scalar_type(), g.scalar_type());
      const torch::Tensor g_cpu = g.cpu();
      if (c.scalar_type() == torch::kUInt8) {
        EXPECT_LE(ShareApart(c, g_cpu, 0.5), 0.01);  // codes that differ at all
        EXPECT_LE(ShareApart(c, g_cpu, 2.5), 0.0);   // none by more than two codes
      } else {
        EXPECT_LE(ShareApart(c, g_cpu, 1e-5), 0.0);
      }
    }
    for (const auto& [c, g] : {std::pair{cs.exp_avg_scale(), gs.exp_avg_scale()},
                               std::pair{cs.exp_avg_sq_scale(), gs.exp_avg_sq_scale()}}) {
      ASSERT_EQ(c.numel(), g.numel());
      if (c.numel() > 0) {
        EXPECT_TRUE(torch::allclose(c, g.cpu(), 1e-3, 1e-9));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FusedAdamW8bitTest,
                         testing::Values(torch::kFloat32, torch::kBFloat16),
                         [](const testing::TestParamInfo<torch::Dtype>& info) {
                           return info.param == torch::kFloat32 ? "Float32" : "BFloat16";
                         });

}  // namespace
}  // namespace ablate::train
