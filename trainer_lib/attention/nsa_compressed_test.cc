// The fast compressed branch and selection (nsa_compressed.h) against the fp32 reference
// (NsaCompressedReference, NsaBlockIndices) on fresh random bf16-rounded inputs. On a GPU this is
// the path NsaAttend takes (cuBLAS's bf16 GEMMs); without one the same code runs on the CPU,
// where the GEMMs multiply the same bf16 values in fp32, so the chunking, masks, selection and
// backward are checked here too.
#include "trainer_lib/attention/nsa_compressed.h"

#include <cstdint>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer_lib/attention/nsa.h"
#include "trainer_lib/attention/nsa_error_rule.h"

namespace ablate::train {
namespace {

struct Case {
  int64_t batch = 1;
  int64_t heads = 16;
  int64_t kv_heads = 1;
  int64_t seq_len = 1001;
  int64_t head_dim = 128;
  int64_t block_size = 64;
  int64_t selected = 16;
  int64_t chunk = 0;        // NsaOptions::query_chunk
  int64_t fused_bytes = 0;  // NsaOptions::fused_chunk_bytes
};

std::string Describe(const Case& c) {
  std::ostringstream s;
  s << "B=" << c.batch << " H=" << c.heads << " H_kv=" << c.kv_heads << " T=" << c.seq_len
    << " D=" << c.head_dim << " l=" << c.block_size << " n=" << c.selected
    << " chunk=" << c.chunk << " fused bytes=" << c.fused_bytes;
  return s.str();
}

torch::Device Device() { return torch::cuda::is_available() ? torch::kCUDA : torch::kCPU; }

NsaOptions Options(const Case& c) {
  NsaOptions o;
  o.shape = {c.block_size, c.selected, 0};
  o.query_chunk = c.chunk;
  o.fused_chunk_bytes = c.fused_bytes;
  return o;
}

struct Inputs {
  torch::Tensor q, k, v, d_o;  // bf16-rounded, fp32
};

// `constant_blocks`: every token of a block carries the same key, so the pooled k_cmp is exactly
// a bf16 value and the fast path's scores differ from the reference's by summation order only.
Inputs RandomInputs(const Case& c, bool constant_blocks = false) {
  auto f32 = torch::TensorOptions().device(Device());
  auto round = [](torch::Tensor x) { return x.to(torch::kBFloat16).to(torch::kFloat32); };
  torch::Tensor k = torch::randn({c.batch, c.kv_heads, c.seq_len, c.head_dim}, f32);
  if (constant_blocks) {
    const int64_t blocks = (c.seq_len + c.block_size - 1) / c.block_size;
    torch::Tensor per_block = torch::randn({c.batch, c.kv_heads, blocks, 1, c.head_dim}, f32);
    k = per_block.expand({c.batch, c.kv_heads, blocks, c.block_size, c.head_dim})
            .reshape({c.batch, c.kv_heads, blocks * c.block_size, c.head_dim})
            .narrow(2, 0, c.seq_len)
            .contiguous();
  }
  return {round(torch::randn({c.batch, c.heads, c.seq_len, c.head_dim}, f32)), round(k),
          round(torch::randn({c.batch, c.kv_heads, c.seq_len, c.head_dim}, f32)),
          round(torch::randn({c.batch, c.heads, c.seq_len, c.head_dim}, f32))};
}

// o_cmp and the gradients of q, k, v: the fast path (bf16 inputs) and the reference in `dtype`.
std::vector<torch::Tensor> Run(const Inputs& in, const Case& c, bool fast, torch::Dtype dtype) {
  torch::Tensor q = in.q.to(dtype).detach().requires_grad_(true);
  torch::Tensor k = in.k.to(dtype).detach().requires_grad_(true);
  torch::Tensor v = in.v.to(dtype).detach().requires_grad_(true);
  torch::Tensor o = fast ? NsaCompressedAndSelect(q, k, v, Options(c)).out
                         : NsaCompressedReference(q, k, v, c.block_size);
  o.backward(in.d_o.to(o.scalar_type()));
  // The reference leaves k and v out of the graph when no block ends: their gradient is 0.
  auto grad = [](const torch::Tensor& x) {
    return x.grad().defined() ? x.grad() : torch::zeros_like(x);
  };
  return {o.detach(), grad(q), grad(k), grad(v)};
}

void CheckOutputs(const Case& c) {
  torch::manual_seed(c.seq_len * 131 + c.heads * 7 + c.head_dim + c.chunk);
  const Inputs in = RandomInputs(c);
  const std::vector<torch::Tensor> exact = Run(in, c, false, torch::kFloat32);
  const std::vector<torch::Tensor> bf16 = Run(in, c, false, torch::kBFloat16);
  const std::vector<torch::Tensor> ours = Run(in, c, true, torch::kBFloat16);
  const char* names[] = {"o_cmp", "o_cmp dq", "o_cmp dk", "o_cmp dv"};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(ours[i].defined()) << names[i] << " missing: " << Describe(c);
    EXPECT_EQ(ours[i].sizes(), exact[i].sizes()) << names[i] << ": " << Describe(c);
    NsaExpectWithinRule(std::string(names[i]) + " " + Describe(c), "fast", ours[i], bf16[i],
                        exact[i]);
  }
  // Queries before the first block ends see nothing: exactly 0, as fla's nan_to_num makes it.
  const int64_t blind = std::min(c.block_size - 1, c.seq_len);
  EXPECT_EQ(ours[0].narrow(2, 0, blind).abs().max().item<double>(), 0.0) << Describe(c);
}

// Selected blocks of `a` (not -1) that `b`'s row for the same query lacks; rows [..., n].
int64_t Missing(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor x = a.to(torch::kInt64).flatten(0, -2), y = b.to(torch::kInt64).flatten(0, -2);
  torch::Tensor found = (x.unsqueeze(-1) == y.unsqueeze(-2)).any(-1);
  return (x.ge(0) & found.logical_not()).sum().item<int64_t>();
}

// The ours-only checks: int32 [B, H_kv, T, n], no block after the query's own, and fla's forced
// first, own and previous blocks all present.
void ExpectWellFormed(const torch::Tensor& idx, const Case& c) {
  ASSERT_EQ(idx.scalar_type(), torch::kInt32);
  ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{c.batch, c.kv_heads, c.seq_len, c.selected}));
  const auto long_opts = idx.options().dtype(torch::kInt64);
  torch::Tensor own = torch::floor_divide(torch::arange(c.seq_len, long_opts), c.block_size)
                          .view({1, 1, c.seq_len, 1});
  EXPECT_TRUE((idx.ge(-1) & idx.le(own)).all().item<bool>()) << Describe(c);
  auto has = [&](const torch::Tensor& block) { return (idx == block).any(-1); };
  EXPECT_TRUE(has(torch::zeros_like(own)).all().item<bool>()) << "first block: " << Describe(c);
  EXPECT_TRUE(has(own).all().item<bool>()) << "own block: " << Describe(c);
  EXPECT_TRUE((has(own - 1) | own.squeeze(-1).eq(0)).all().item<bool>())
      << "previous block: " << Describe(c);
}

// Ours against NsaBlockIndices on the same inputs: the fraction of our kept blocks the
// reference did not keep, at most `tolerance`.
void CheckSelection(const Case& c, bool constant_blocks, double tolerance) {
  torch::manual_seed(c.seq_len * 17 + c.heads + c.chunk);
  const Inputs in = RandomInputs(c, constant_blocks);
  torch::Tensor ours;
  {
    torch::NoGradGuard no_grad;
    ours = NsaCompressedAndSelect(in.q.to(torch::kBFloat16), in.k.to(torch::kBFloat16),
                                  in.v.to(torch::kBFloat16), Options(c))
               .block_idx;
  }
  const torch::Tensor reference = NsaBlockIndices(in.q, in.k, Options(c));
  ExpectWellFormed(ours, c);
  const int64_t kept = ours.ge(0).sum().item<int64_t>();
  const int64_t missing = Missing(ours, reference);
  const double fraction = static_cast<double>(missing) / static_cast<double>(kept);
  EXPECT_LE(fraction, tolerance) << Describe(c) << ": " << missing << " of " << kept
                                 << " blocks differ";
  EXPECT_EQ(kept, reference.ge(0).sum().item<int64_t>()) << Describe(c);
  std::cout << "  selection " << Describe(c) << (constant_blocks ? " constant blocks" : "")
            << ": " << missing << " of " << kept << " blocks differ from the reference\n";
}

TEST(NsaCompressedTest, HeadRatiosWithinBf16Rule) {
  CheckOutputs({.heads = 2, .kv_heads = 2, .seq_len = 1001});
  CheckOutputs({.heads = 4, .kv_heads = 2, .seq_len = 777, .chunk = 100});
  CheckOutputs({.heads = 5, .kv_heads = 1, .seq_len = 1500, .block_size = 32, .chunk = 333});
  CheckOutputs({.heads = 32, .kv_heads = 2, .seq_len = 4099});
}

TEST(NsaCompressedTest, OddShapesWithinBf16Rule) {
  CheckOutputs({.batch = 2, .heads = 8, .kv_heads = 4, .seq_len = 777, .head_dim = 64,
                .chunk = 64});
  CheckOutputs({.heads = 16, .kv_heads = 1, .seq_len = 130, .chunk = 7});
  // No block ends before the last query: o_cmp and its gradients are all 0.
  CheckOutputs({.heads = 4, .kv_heads = 2, .seq_len = 63});
  // On CUDA the fused attention one key/value head at a time, then two (and a run of one).
  CheckOutputs({.batch = 2, .heads = 8, .kv_heads = 4, .seq_len = 777, .fused_bytes = 1});
  // Two heads' 8 bytes per element of their folded q: G l rows of NF = 15 blocks, D = 128 each.
  CheckOutputs({.heads = 15, .kv_heads = 3, .seq_len = 1001,
                .fused_bytes = 2 * 8 * (5 * 64) * 15 * 128});
}

// k constant over each block: the scores match the reference's to rounding (on CUDA also to the
// ~1e-6 by which cuDNN's log-sum-exp, which normalizes them, is off), so the choice may differ
// only in ties to that.
TEST(NsaCompressedTest, SelectionEqualsTheReferenceWithoutNearTies) {
  for (int64_t g : {1, 2, 5, 16}) {
    CheckSelection({.heads = 2 * g, .kv_heads = 2, .seq_len = 4099}, true, 1e-4);
  }
  CheckSelection({.heads = 8, .kv_heads = 2, .seq_len = 1001, .block_size = 32, .selected = 8,
                  .chunk = 333},
                 true, 1e-4);
}

// General k: k_cmp's bf16 rounding moves scores by ~1e-3 of their spread, enough to swap the
// last kept block with the next one now and then (about 6e-4 of the blocks at these shapes on
// the CPU), never to drop a forced one.
TEST(NsaCompressedTest, SelectionCloseToTheReference) {
  for (int64_t g : {1, 2, 5, 16}) {
    CheckSelection({.heads = 2 * g, .kv_heads = 2, .seq_len = 4099}, false, 5e-3);
  }
  // The log-sum-exp the selection takes from the fused attention, run a key/value head at a time.
  CheckSelection({.heads = 8, .kv_heads = 4, .seq_len = 4099, .fused_bytes = 1}, false, 5e-3);
}

}  // namespace
}  // namespace ablate::train
