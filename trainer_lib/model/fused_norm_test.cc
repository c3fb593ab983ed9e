// The fused RMSNorm kernels against the eager modules and an fp64 reference, on the GPU. The
// rule (flash-attention's): the kernels' largest error against fp64 is at most twice the eager
// bf16 path's own, for outputs and for every gradient. Outputs land in memory the allocator
// last handed out filled with NaN, so an element a kernel forgets to write shows.
#include "trainer_lib/model/fused_norm.h"

#include <functional>
#include <tuple>
#include <utility>
#include <vector>

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

// Skips unless the kernels can run here.
#define REQUIRE_KERNELS()                                                         \
  if (!FusedKernelsEnabled() || !torch::cuda::is_available()) {                   \
    GTEST_SKIP() << "needs the CUDA kernels (nvcc and LibTorch with CUDA) and a GPU"; \
  }

class Bf16Autocast {
 public:
  Bf16Autocast() {
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
  }
  ~Bf16Autocast() {
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    at::autocast::clear_cache();
  }
};

// Leaves NaN in the caching allocator's free blocks, where the next outputs will come from.
void PoisonAllocator() {
  torch::Tensor poison = torch::full({64 << 20}, NAN, torch::TensorOptions().device(torch::kCUDA));
  torch::cuda::synchronize();
}

double MaxError(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kFloat64) - want).abs().max().item<double>();
}

struct Grads {
  torch::Tensor y, dx, dw;
};

// y = f(x) through `norm`, and the gradients of sum(y * g) for x and the norm's weight.
Grads RunThrough(RMSNorm& norm, const std::function<torch::Tensor(const torch::Tensor&)>& f,
          const torch::Tensor& x0, const torch::Tensor& g) {
  norm->zero_grad();
  torch::Tensor x = x0.detach().clone().requires_grad_(true);
  torch::Tensor y = f(x);
  (y.to(g.scalar_type()) * g).sum().backward();
  return {y.detach(), x.grad(), norm->weight().grad().clone()};
}

// The same in fp64 with nothing rounded: the reference both are judged against.
Grads RunExact(const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& f,
               const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& g) {
  torch::Tensor x = x0.detach().to(torch::kFloat64).requires_grad_(true);
  torch::Tensor w = w0.detach().to(torch::kFloat64).requires_grad_(true);
  torch::Tensor y = f(x, w);
  (y * g).sum().backward();
  return {y.detach(), x.grad(), w.grad()};
}

torch::Tensor ExactNorm(const torch::Tensor& x, const torch::Tensor& w) {
  return w * x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + 1e-6);
}

void ExpectWithinTwiceEager(const Grads& fused, const Grads& eager, const Grads& exact) {
  for (const auto& [name, a, b, c] :
       {std::tuple{"y", fused.y, eager.y, exact.y}, std::tuple{"dx", fused.dx, eager.dx, exact.dx},
        std::tuple{"dw", fused.dw, eager.dw, exact.dw}}) {
    ASSERT_TRUE(torch::isfinite(a).all().item<bool>()) << name << " has NaN or Inf";
    const double fused_error = MaxError(a, c);
    const double eager_error = MaxError(b, c);
    EXPECT_LE(fused_error, 2 * eager_error + 1e-6) << name << ": eager " << eager_error;
  }
}

RMSNorm CudaNorm(int64_t dim, const torch::Tensor& weight) {
  RMSNorm norm(dim, 1e-6);
  norm->to(torch::kCUDA);
  torch::NoGradGuard no_grad;
  norm->weight().copy_(weight);
  return norm;
}

TEST(FusedNormTest, NormForProjectionMatchesEagerWithinItsError) {
  REQUIRE_KERNELS();
  torch::manual_seed(1);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  // Odd sizes: a row count no block divides, a width no warp divides; fp32 and bf16 inputs.
  for (torch::ScalarType dtype : {torch::kFloat32, torch::kBFloat16}) {
    torch::Tensor x = (3 * torch::randn({3, 37, 1000}, cuda)).to(dtype);
    torch::Tensor w = 1 + 0.1 * torch::randn({1000}, cuda);
    torch::Tensor g = torch::randn({3, 37, 1000}, cuda.dtype(torch::kFloat64));
    RMSNorm norm = CudaNorm(1000, w);
    Grads fused, eager;
    {
      Bf16Autocast autocast;
      PoisonAllocator();
      fused = RunThrough(
          norm, [&](const torch::Tensor& x) { return NormForProjection(*norm, x); }, x, g);
      // Eager: the module, then the cast the projection's autocast makes.
      eager = RunThrough(norm, [&](const torch::Tensor& x) {
        return norm->forward(x).to(torch::kBFloat16);
      }, x, g);
    }
    ASSERT_EQ(fused.y.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(fused.dx.scalar_type(), dtype);
    ExpectWithinTwiceEager(fused, eager, RunExact(ExactNorm, x, w, g));
  }
}

// Qwen3's per-head norms and RoPE: head dims 64, 128 and 256, an odd length.
TEST(FusedNormTest, NormRopeForAttentionMatchesEagerWithinItsError) {
  REQUIRE_KERNELS();
  torch::manual_seed(2);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (const auto& [heads, dim] : {std::pair{8, 64}, std::pair{16, 128}, std::pair{4, 256}}) {
    const int64_t b = 2, t = 77;
    const RopeTables rope = MakeRopeTables(t, dim, 1e6, torch::kCUDA);
    torch::Tensor x = (2 * torch::randn({b, t, heads, dim}, cuda)).to(torch::kBFloat16);
    torch::Tensor w = 1 + 0.1 * torch::randn({dim}, cuda);
    torch::Tensor g = torch::randn({b, heads, t, dim}, cuda.dtype(torch::kFloat64));
    RMSNorm norm = CudaNorm(dim, w);
    Grads fused, eager;
    {
      Bf16Autocast autocast;
      PoisonAllocator();
      fused = RunThrough(norm, [&](const torch::Tensor& x) {
        return NormRopeForAttention(*norm, x, rope);
      }, x, g);
      // Eager: the module, RoPE, then the cast attention's autocast makes.
      eager = RunThrough(norm, [&](const torch::Tensor& x) {
        return ApplyRope(norm->forward(x).transpose(1, 2), rope).to(torch::kBFloat16);
      }, x, g);
    }
    ASSERT_EQ(fused.y.sizes(), (std::vector<int64_t>{b, heads, t, dim}));
    auto exact_fn = [&](const torch::Tensor& x, const torch::Tensor& w) {
      torch::Tensor n = ExactNorm(x, w).transpose(1, 2);
      const int64_t half = dim / 2;
      torch::Tensor rotated = torch::cat({-n.narrow(-1, half, half), n.narrow(-1, 0, half)}, -1);
      return n * rope.cos.to(torch::kFloat64) + rotated * rope.sin.to(torch::kFloat64);
    };
    SCOPED_TRACE(testing::Message() << "heads " << heads << " head dim " << dim);
    ExpectWithinTwiceEager(fused, eager, RunExact(exact_fn, x, w, g));
  }
}

// dweight is summed in a fixed order: the same bits on every run.
TEST(FusedNormTest, WeightGradientIsDeterministic) {
  REQUIRE_KERNELS();
  torch::manual_seed(3);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  torch::Tensor x = torch::randn({4, 3001, 1024}, cuda);
  torch::Tensor g = torch::randn({4, 3001, 1024}, cuda.dtype(torch::kFloat64));
  RMSNorm norm = CudaNorm(1024, torch::ones({1024}, cuda));
  Bf16Autocast autocast;
  auto f = [&](const torch::Tensor& x) { return NormForProjection(*norm, x); };
  const Grads first = RunThrough(norm, f, x, g);
  const Grads second = RunThrough(norm, f, x, g);
  EXPECT_TRUE(torch::equal(first.dw, second.dw));
  EXPECT_TRUE(torch::equal(first.dx, second.dx));
}

}  // namespace
}  // namespace ablate::train
