// The fused RMSNorm kernels against the eager modules and an fp64 reference, on the GPU. The
// rule (flash-attention's): the kernels' largest error against fp64 is at most twice the eager
// bf16 path's own, for outputs and for every gradient. Outputs land in memory the allocator
// last handed out filled with NaN, so an element a kernel forgets to write shows.
#include "trainer_lib/model/fused_norm.h"

#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer_lib/model/fused_kernels_testing.h"

namespace ablate::train {
namespace {

using kernel_test::Bf16Autocast;
using kernel_test::PoisonAllocator;

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
  kernel_test::ExpectWithinTwiceEagerError({"y", "dx", "dw"}, {fused.y, fused.dx, fused.dw},
                                           {eager.y, eager.dx, eager.dw},
                                           {exact.y, exact.dx, exact.dw});
}

// x's values in a tensor whose data starts one element past an allocation's (16-byte aligned)
// start, which the kernels' 16-byte accesses cannot take: the same math, by the other kernels.
torch::Tensor Misaligned(const torch::Tensor& x) {
  torch::Tensor flat = torch::cat({torch::zeros({1}, x.options()), x.flatten()});
  return flat.narrow(0, 1, x.numel()).view(x.sizes());
}

void ExpectSameBits(const Grads& a, const Grads& b) {
  EXPECT_TRUE(torch::equal(a.y, b.y)) << "y not the same bits on a second run";
  EXPECT_TRUE(torch::equal(a.dx, b.dx)) << "dx not the same bits on a second run";
  EXPECT_TRUE(torch::equal(a.dw, b.dw)) << "dw not the same bits on a second run";
}

RMSNorm CudaNorm(int64_t dim, const torch::Tensor& weight) {
  RMSNorm norm(dim, 1e-6);
  norm->to(torch::kCUDA);
  torch::NoGradGuard no_grad;
  norm->weight().copy_(weight);
  return norm;
}

TEST(FusedNormTest, NormForProjectionMatchesEagerWithinItsError) {
  ABLATE_REQUIRE_FUSED_KERNELS();
  torch::manual_seed(1);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  // Odd sizes: a row count no block divides; widths of whole 16-byte vectors that fit in
  // registers exactly (1,024) or with the last vectors masked (1,000), and widths the
  // one-element kernels take: not whole vectors (1,001), too wide (Qwen3-4B's 2,560), or
  // misaligned; fp32 and bf16 inputs.
  for (const auto& [dtype, width, misaligned] :
       {std::tuple{torch::kFloat32, 1000, false}, std::tuple{torch::kBFloat16, 1000, false},
        std::tuple{torch::kFloat32, 1024, false}, std::tuple{torch::kBFloat16, 1024, false},
        std::tuple{torch::kFloat32, 1001, false}, std::tuple{torch::kBFloat16, 1001, false},
        std::tuple{torch::kFloat32, 2560, false}, std::tuple{torch::kBFloat16, 2560, false},
        std::tuple{torch::kFloat32, 1024, true}}) {
    SCOPED_TRACE(testing::Message() << "dtype " << dtype << " width " << width << " misaligned "
                                    << misaligned);
    torch::Tensor x = (3 * torch::randn({3, 37, width}, cuda)).to(dtype);
    torch::Tensor w = 1 + 0.1 * torch::randn({width}, cuda);
    torch::Tensor g = torch::randn({3, 37, width}, cuda.dtype(torch::kFloat64));
    RMSNorm norm = CudaNorm(width, w);
    Grads fused, again, eager;
    {
      Bf16Autocast autocast;
      auto fused_fn = [&](const torch::Tensor& x) {
        return NormForProjection(*norm, misaligned ? Misaligned(x) : x);
      };
      PoisonAllocator();
      fused = RunThrough(norm, fused_fn, x, g);
      PoisonAllocator();
      again = RunThrough(norm, fused_fn, x, g);
      // Eager: the module, then the cast the projection's autocast makes.
      eager = RunThrough(norm, [&](const torch::Tensor& x) {
        return norm->forward(x).to(torch::kBFloat16);
      }, x, g);
    }
    ASSERT_EQ(fused.y.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(fused.dx.scalar_type(), dtype);
    ExpectWithinTwiceEager(fused, eager, RunExact(ExactNorm, x, w, g));
    ExpectSameBits(fused, again);
  }
}

// Qwen3's per-head norms and RoPE: head dims 64, 128 and 256, an odd length, and at 128 a
// length long enough that each block takes several rows per lane; a head dim whose halves end
// in a part of a lane's vectors (80), and one whose halves are not whole 16-byte vectors (36),
// which the one-element kernels take. Both memory orders of the result.
TEST(FusedNormTest, NormRopeForAttentionMatchesEagerWithinItsError) {
  ABLATE_REQUIRE_FUSED_KERNELS();
  torch::manual_seed(2);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (const auto& [heads, dim, t] :
       {std::tuple{8, 64, 77}, std::tuple{16, 128, 77}, std::tuple{4, 256, 77},
        std::tuple{5, 80, 77}, std::tuple{3, 36, 77}, std::tuple{16, 128, 1025}}) {
    const int64_t b = 2;
    const RopeTables rope = MakeRopeTables(t, dim, 1e6, torch::kCUDA);
    torch::Tensor x = (2 * torch::randn({b, t, heads, dim}, cuda)).to(torch::kBFloat16);
    torch::Tensor w = 1 + 0.1 * torch::randn({dim}, cuda);
    torch::Tensor g = torch::randn({b, heads, t, dim}, cuda.dtype(torch::kFloat64));
    RMSNorm norm = CudaNorm(dim, w);
    Grads fused, again, eager;
    {
      Bf16Autocast autocast;
      auto fused_in = [&](RopeLayout layout) {
        return [&, layout](const torch::Tensor& x) {
          return NormRopeForAttention(*norm, x, rope, layout);
        };
      };
      PoisonAllocator();
      fused = RunThrough(norm, fused_in(RopeLayout::kHeadsMajor), x, g);
      // The token-major order holds the same values as a transposed view: bit-identical to
      // the heads-major run, which also shows the kernels deterministic.
      PoisonAllocator();
      again = RunThrough(norm, fused_in(RopeLayout::kTokenMajor), x, g);
      EXPECT_TRUE(again.y.transpose(1, 2).is_contiguous());
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
    SCOPED_TRACE(testing::Message() << "heads " << heads << " head dim " << dim << " length " << t);
    ExpectWithinTwiceEager(fused, eager, RunExact(exact_fn, x, w, g));
    ExpectSameBits(fused, again);
  }
}

// What the residual add and its norm give: the stream, the normed values, and the gradients
// of x, delta and the weight for the loss sum(normed * g) + sum(residual * g_residual).
struct AddGrads {
  torch::Tensor residual, normed, dx, ddelta, dw;
};

using AddFn = std::function<ResidualNormed(const torch::Tensor&, const torch::Tensor&)>;

AddGrads RunAdd(RMSNorm& norm, const AddFn& f, const torch::Tensor& x0, const torch::Tensor& d0,
                const torch::Tensor& g, const torch::Tensor& g_residual) {
  norm->zero_grad();
  torch::Tensor x = x0.detach().clone().requires_grad_(true);
  torch::Tensor d = d0.detach().clone().requires_grad_(true);
  const ResidualNormed out = f(x, d);
  ((out.normed.to(g.scalar_type()) * g).sum() +
   (out.residual.to(g_residual.scalar_type()) * g_residual).sum())
      .backward();
  return {out.residual.detach(), out.normed.detach(), x.grad(), d.grad(),
          norm->weight().grad().clone()};
}

// The same loss in fp64 with nothing rounded.
AddGrads RunAddExact(const torch::Tensor& x0, const torch::Tensor& d0, const torch::Tensor& w0,
                     const torch::Tensor& g, const torch::Tensor& g_residual) {
  torch::Tensor x = x0.detach().to(torch::kFloat64).requires_grad_(true);
  torch::Tensor d = d0.detach().to(torch::kFloat64).requires_grad_(true);
  torch::Tensor w = w0.detach().to(torch::kFloat64).requires_grad_(true);
  torch::Tensor s = x + d;
  torch::Tensor y = ExactNorm(s, w);
  ((y * g).sum() + (s * g_residual).sum()).backward();
  return {s.detach(), y.detach(), x.grad(), d.grad(), w.grad()};
}

// The fused residual add: the stream bit for bit as eager's x + delta, the rest within twice
// the eager bf16 path's error. Widths for both kernels (1,000 and 1,024 fit a warp's
// registers, 2,560 does not), an odd row count.
TEST(FusedNormTest, AddNormForProjectionMatchesEagerWithinItsError) {
  ABLATE_REQUIRE_FUSED_KERNELS();
  torch::manual_seed(4);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (const int64_t width : {1000, 1024, 2560}) {
    SCOPED_TRACE(testing::Message() << "width " << width);
    torch::Tensor x = 3 * torch::randn({3, 37, width}, cuda);
    torch::Tensor d = torch::randn({3, 37, width}, cuda).to(torch::kBFloat16);
    torch::Tensor w = 1 + 0.1 * torch::randn({width}, cuda);
    torch::Tensor g = torch::randn({3, 37, width}, cuda.dtype(torch::kFloat64));
    torch::Tensor g_residual = torch::randn({3, 37, width}, cuda.dtype(torch::kFloat64));
    RMSNorm norm = CudaNorm(width, w);
    AddGrads fused, again, eager;
    {
      Bf16Autocast autocast;
      auto fused_fn = [&](const torch::Tensor& x, const torch::Tensor& d) {
        ResidualNormed out = AddNormForProjection(*norm, x, d);
        // The kernels' node, not the eager fallback's.
        EXPECT_NE(out.normed.grad_fn()->name().find("FusedAddRmsNorm"), std::string::npos)
            << out.normed.grad_fn()->name();
        return out;
      };
      PoisonAllocator();
      fused = RunAdd(norm, fused_fn, x, d, g, g_residual);
      PoisonAllocator();
      again = RunAdd(norm, fused_fn, x, d, g, g_residual);
      // Eager: the add, the module, then the cast the projection's autocast makes.
      eager = RunAdd(norm, [&](const torch::Tensor& x, const torch::Tensor& d) {
        torch::Tensor s = x + d;
        return ResidualNormed{s, norm->forward(s).to(torch::kBFloat16)};
      }, x, d, g, g_residual);
    }
    ASSERT_EQ(fused.residual.scalar_type(), torch::kFloat32);
    ASSERT_EQ(fused.normed.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(fused.dx.scalar_type(), torch::kFloat32);
    ASSERT_EQ(fused.ddelta.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(fused.residual, eager.residual));
    const AddGrads exact = RunAddExact(x, d, w, g, g_residual);
    kernel_test::ExpectWithinTwiceEagerError(
        {"normed", "dx", "ddelta", "dw"}, {fused.normed, fused.dx, fused.ddelta, fused.dw},
        {eager.normed, eager.dx, eager.ddelta, eager.dw},
        {exact.normed, exact.dx, exact.ddelta, exact.dw});
    // The gradient of delta is the gradient of x, rounded as eager's add rounds it.
    EXPECT_TRUE(torch::equal(fused.ddelta, fused.dx.to(torch::kBFloat16)));
    for (const auto& [a, b] : {std::pair{fused.normed, again.normed}, std::pair{fused.dx, again.dx},
                               std::pair{fused.ddelta, again.ddelta},
                               std::pair{fused.dw, again.dw}}) {
      EXPECT_TRUE(torch::equal(a, b)) << "not the same bits on a second run";
    }
  }
}

// Without the kernels (here: on the CPU) the residual add is eager's, then NormForProjection.
TEST(FusedNormTest, AddNormForProjectionIsEagerWithoutTheKernels) {
  torch::manual_seed(5);
  torch::Tensor x = 3 * torch::randn({3, 5, 40});
  torch::Tensor d = torch::randn({3, 5, 40}).to(torch::kBFloat16);
  RMSNorm norm(40, 1e-6);
  {
    torch::NoGradGuard no_grad;
    norm->weight().copy_(1 + 0.1 * torch::randn({40}));
  }
  const ResidualNormed out = AddNormForProjection(*norm, x, d);
  const torch::Tensor s = x + d;
  EXPECT_TRUE(torch::equal(out.residual, s));
  EXPECT_TRUE(torch::equal(out.normed, norm->forward(s)));
}

// dweight is summed in a fixed order: the same bits on every run, with many rows to each of the
// backward's blocks, by the vector kernels (1,024) and the one-element ones (1,001).
TEST(FusedNormTest, WeightGradientIsDeterministic) {
  ABLATE_REQUIRE_FUSED_KERNELS();
  torch::manual_seed(3);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  for (const int64_t width : {1024, 1001}) {
    SCOPED_TRACE(testing::Message() << "width " << width);
    torch::Tensor x = torch::randn({4, 3001, width}, cuda);
    torch::Tensor g = torch::randn({4, 3001, width}, cuda.dtype(torch::kFloat64));
    RMSNorm norm = CudaNorm(width, torch::ones({width}, cuda));
    Bf16Autocast autocast;
    auto f = [&](const torch::Tensor& x) { return NormForProjection(*norm, x); };
    const Grads first = RunThrough(norm, f, x, g);
    PoisonAllocator();
    ExpectSameBits(first, RunThrough(norm, f, x, g));
  }
}

}  // namespace
}  // namespace ablate::train
