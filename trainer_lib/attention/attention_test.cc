#include "trainer_lib/attention/attention.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace ablate::train {
namespace {

// softmax(q k^T / sqrt(D) + causal mask) v with key/value heads repeated for each query group.
torch::Tensor ReferenceAttention(const torch::Tensor& q, const torch::Tensor& k,
                                 const torch::Tensor& v) {
  const int64_t group = q.size(1) / k.size(1);
  const int64_t t = q.size(2);
  torch::Tensor k_rep = k.repeat_interleave(group, /*dim=*/1);  // [B, H, T, D]
  torch::Tensor v_rep = v.repeat_interleave(group, /*dim=*/1);
  torch::Tensor scores = torch::matmul(q, k_rep.transpose(-2, -1)) / std::sqrt(q.size(3));
  torch::Tensor future = torch::ones({t, t}, torch::kBool).triu(1);
  scores = scores.masked_fill(future, -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1), v_rep);
}

TEST(AttentionTest, DenseMatchesReferenceWithGroupedHeads) {
  torch::manual_seed(0);
  auto attention = MakeAttention("dense", v1::ModelConfig());
  ASSERT_TRUE(attention.ok()) << attention.status();
  // Odd sizes so that no blocking in the fused kernel lines up with the sequence.
  torch::Tensor q = torch::randn({2, 6, 37, 16});
  torch::Tensor k = torch::randn({2, 2, 37, 16});
  torch::Tensor v = torch::randn({2, 2, 37, 16});
  torch::Tensor out = (*attention)->Forward(q, k, v, torch::Tensor());
  ASSERT_EQ(out.sizes(), q.sizes());
  EXPECT_TRUE(torch::allclose(out, ReferenceAttention(q, k, v), 1e-5, 1e-5));
}

TEST(AttentionTest, DenseOnCudaInBf16MatchesReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(0);
  auto attention = MakeAttention("dense", v1::ModelConfig());
  ASSERT_TRUE(attention.ok()) << attention.status();
  torch::Tensor q = torch::randn({2, 8, 97, 64});
  torch::Tensor k = torch::randn({2, 2, 97, 64});
  torch::Tensor v = torch::randn({2, 2, 97, 64});
  auto bf16 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  torch::Tensor out = (*attention)->Forward(q.to(bf16), k.to(bf16), v.to(bf16), torch::Tensor());
  torch::Tensor reference = ReferenceAttention(q, k, v);
  // bf16 keeps 8 bits of mantissa: a few parts in a thousand of the inputs' scale.
  EXPECT_LT((out.to(torch::kCPU, torch::kFloat32) - reference).abs().max().item<float>(), 3e-2);
}

TEST(AttentionTest, RejectsMismatchedHeads) {
  auto attention = MakeAttention("dense", v1::ModelConfig());
  ASSERT_TRUE(attention.ok());
  EXPECT_THROW((*attention)->Forward(torch::zeros({1, 3, 4, 8}), torch::zeros({1, 2, 4, 8}),
                                     torch::zeros({1, 2, 4, 8}), torch::Tensor()),
               c10::Error);
}

TEST(AttentionTest, UnknownKindsAreInvalid) {
  EXPECT_EQ(MakeAttention("linear", v1::ModelConfig()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ablate::train
