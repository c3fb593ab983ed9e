// The window branch on FlashAttention (nsa_window.h) against NsaWindowReference on fresh random
// inputs, under the NSA issue's error rule (nsa_error_rule.h): output and all three gradients,
// every head ratio the kernels take, head dims 64, 128 and 256, windows on and off the length,
// and backward chunks cut inside, at and beyond the window. The GPU cases skip without one.
#include "trainer_lib/attention/nsa_window.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "trainer_lib/attention/nsa.h"
#include "trainer_lib/attention/nsa_error_rule.h"

namespace ablate::train {
namespace {

struct Case {
  int64_t batch = 1;
  int64_t heads = 4;
  int64_t kv_heads = 2;
  int64_t seq_len = 1337;
  int64_t head_dim = 128;
  int64_t window = 512;
  int64_t backward_rows = 0;  // NsaWindowAttention's; 0: by memory (one chunk here)
};

std::string Describe(const Case& c) {
  std::ostringstream s;
  s << "B=" << c.batch << " H=" << c.heads << " H_kv=" << c.kv_heads << " T=" << c.seq_len
    << " D=" << c.head_dim << " w=" << c.window << " rows=" << c.backward_rows;
  return s.str();
}

// o, dq, dk, dv of `attend` on fp32 leaves copied from q, k, v in `dtype`.
template <typename Attend>
std::vector<torch::Tensor> Run(const Attend& attend, const std::vector<torch::Tensor>& in,
                               torch::Dtype dtype) {
  torch::Tensor q = in[0].to(dtype).detach().requires_grad_(true);
  torch::Tensor k = in[1].to(dtype).detach().requires_grad_(true);
  torch::Tensor v = in[2].to(dtype).detach().requires_grad_(true);
  torch::Tensor o = attend(q, k, v);
  o.backward(in[3].to(o.scalar_type()));
  return {o.detach(), q.grad(), k.grad(), v.grad()};
}

void CheckCase(const Case& c) {
  SCOPED_TRACE(Describe(c));
  torch::manual_seed(c.seq_len * 31 + c.heads * 7 + c.head_dim + c.window + c.backward_rows);
  auto f32 = torch::TensorOptions().device(torch::kCUDA);
  auto bf16_rounded = [&](std::vector<int64_t> shape) {
    return torch::randn(shape, f32).to(torch::kBFloat16).to(torch::kFloat32);
  };
  const std::vector<torch::Tensor> in = {bf16_rounded({c.batch, c.heads, c.seq_len, c.head_dim}),
                                         bf16_rounded({c.batch, c.kv_heads, c.seq_len, c.head_dim}),
                                         bf16_rounded({c.batch, c.kv_heads, c.seq_len, c.head_dim}),
                                         bf16_rounded({c.batch, c.heads, c.seq_len, c.head_dim})};
  auto reference = [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    return NsaWindowReference(q, k, v, c.window);
  };
  auto flash = [&](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    return NsaWindowAttention(q, k, v, c.window, c.backward_rows);
  };
  ASSERT_TRUE(NsaWindowFlashTakes(in[0], in[1]));
  const std::vector<torch::Tensor> exact = Run(reference, in, torch::kFloat32);
  const std::vector<torch::Tensor> bf16 = Run(reference, in, torch::kBFloat16);
  // fp32 leaves: the bf16 rounding inside is differentiated, so the gradients come back fp32.
  const std::vector<torch::Tensor> ours = Run(flash, in, torch::kFloat32);
  EXPECT_EQ(ours[0].scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(ours[0].is_contiguous());
  const char* names[] = {"o", "dq", "dk", "dv"};
  for (int i = 0; i < 4; ++i) {
    // A query alone in its window: every exact dk is 0, which the bf16 reference meets exactly
    // and FlashAttention to about 1e-6 through its bf16 o in delta = rowsum(do o); the rule's
    // bound, twice 0, cannot judge it.
    if (c.window == 1 && i == 2) {
      EXPECT_LE(ours[i].abs().max().item<double>(), 1e-5) << "dk " << Describe(c);
      continue;
    }
    if (i > 0) {
      EXPECT_EQ(ours[i].scalar_type(), torch::kFloat32) << names[i];
    }
    NsaExpectWithinRule(names[i] + std::string(" ") + Describe(c), "flash", ours[i], bf16[i],
                        exact[i]);
  }
}

#define REQUIRE_CUDA()                                           \
  if (!torch::cuda::is_available()) {                            \
    GTEST_SKIP() << "needs a GPU (FlashAttention is CUDA only)"; \
  }

TEST(NsaWindowTest, HeadRatios) {
  REQUIRE_CUDA();
  for (int64_t g : {1, 2, 4, 5, 8, 16}) CheckCase({.heads = 2 * g, .kv_heads = 2});
}

// Head dims 64 and 256, batch 2, a window off any block size, a length under the window.
TEST(NsaWindowTest, HeadDimsWindowsAndLengths) {
  REQUIRE_CUDA();
  CheckCase(
      {.batch = 2, .heads = 4, .kv_heads = 2, .seq_len = 1001, .head_dim = 64, .window = 100});
  CheckCase({.heads = 8, .kv_heads = 2, .seq_len = 777, .head_dim = 256, .window = 100});
  CheckCase({.heads = 4, .kv_heads = 2, .seq_len = 37, .window = 512});
  // One key a query (FlashAttention's window of 0 either side) and three.
  CheckCase({.heads = 2, .kv_heads = 1, .seq_len = 300, .head_dim = 64, .window = 1});
  CheckCase({.heads = 2, .kv_heads = 1, .seq_len = 300, .head_dim = 64, .window = 3});
}

// Backward chunks: shorter than the window (each chunk's keys reach back into earlier chunks),
// longer, one query each, and a last chunk of one query.
TEST(NsaWindowTest, BackwardInChunks) {
  REQUIRE_CUDA();
  CheckCase({.heads = 8, .kv_heads = 2, .seq_len = 1337, .window = 512, .backward_rows = 100});
  CheckCase({.heads = 10,
             .kv_heads = 2,
             .seq_len = 1001,
             .head_dim = 64,
             .window = 100,
             .backward_rows = 700});
  CheckCase({.heads = 2,
             .kv_heads = 2,
             .seq_len = 200,
             .head_dim = 64,
             .window = 50,
             .backward_rows = 1});
  CheckCase({.heads = 4, .kv_heads = 1, .seq_len = 1025, .window = 512, .backward_rows = 256});
}

// Off the GPU FlashAttention does not take the tensors, and a call says what it was given.
TEST(NsaWindowTest, RefusesWhatFlashAttentionDoesNotTake) {
  const torch::Tensor q = torch::zeros({1, 4, 16, 64}), k = torch::zeros({1, 2, 16, 64});
  EXPECT_FALSE(NsaWindowFlashTakes(q, k));
  try {
    NsaWindowAttention(q, k, k, 8);
    FAIL() << "a CPU call must fail";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not take q [1, 4, 16, 64] on cpu"),
              std::string::npos)
        << e.what();
  }
  if (torch::cuda::is_available()) {
    const torch::Tensor odd_head = torch::zeros({1, 3, 16, 64}, torch::kCUDA);
    EXPECT_FALSE(NsaWindowFlashTakes(odd_head, k.cuda()));  // 3 heads over 2
    EXPECT_FALSE(NsaWindowFlashTakes(torch::zeros({1, 4, 16, 60}, torch::kCUDA),
                                     torch::zeros({1, 2, 16, 60}, torch::kCUDA)));  // D % 8
  }
  EXPECT_THROW(NsaWindowAttention(q, k, k, 0), c10::Error);
}

}  // namespace
}  // namespace ablate::train
