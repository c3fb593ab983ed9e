// The selected-branch CUDA kernels against NsaSelectedReference, and with a window on the
// window's blocks against NsaWindowReference, on fresh random inputs, outputs poisoned with NaN
// first. The error rule (the NSA issue's): the kernels' largest absolute
// error against the fp32 reference is at most twice PyTorch's own bf16 error, where PyTorch's
// is the same reference run in bf16 on the same bf16-rounded inputs (bf16 matmuls, softmax and
// gather backward as eager PyTorch does them) and both are measured against the reference in
// fp32 on those inputs. Every case skips without a GPU and the kernels
// (nsa_window_blocks_test.cc checks the window's block indices on the CPU).
#include "trainer_lib/attention/nsa_cuda.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer_lib/attention/nsa.h"
#include "trainer_lib/attention/nsa_error_rule.h"
#include "trainer_lib/attention/nsa_gate.h"

namespace ablate::train {
namespace {

#define REQUIRE_KERNELS()                                                        \
  if (!NsaKernelsEnabled() || !torch::cuda::is_available()) {                    \
    GTEST_SKIP() << "needs the NSA kernels (nvcc and LibTorch with CUDA) and a GPU"; \
  }

struct Case {
  int64_t batch = 1;
  int64_t heads = 16;
  int64_t kv_heads = 8;
  int64_t seq_len = 1000;
  int64_t head_dim = 128;
  int64_t block_size = 64;
  int64_t selected = 16;
  bool hot = false;  // every query also picks blocks 1 and 2 in all its free slots
  // Query t picks only blocks c = t (mod 16), c <= t / l, or none: the queries of a thread block
  // (at most 16) select disjoint blocks, and early ones nothing.
  bool disjoint = false;
  int64_t window = 0;  // the kernels' and the reference's w; 0: none
  // The window branch: the window's own blocks (NsaWindowBlockIndices) against
  // NsaWindowReference, instead of random blocks against NsaSelectedReference.
  bool window_blocks = false;
};

std::string Describe(const Case& c) {
  std::ostringstream s;
  s << "B=" << c.batch << " H=" << c.heads << " H_kv=" << c.kv_heads << " T=" << c.seq_len
    << " D=" << c.head_dim << " l=" << c.block_size << " n=" << c.selected
    << (c.hot ? " hot" : "") << (c.disjoint ? " disjoint" : "")
    << (c.window > 0 ? " w=" + std::to_string(c.window) : "")
    << (c.window_blocks ? " window blocks" : "");
  return s.str();
}

// [B, H_kv, Tq, n] int32 for queries first .. first + Tq - 1: the first block, the own block,
// the one before (-1 when none), then random blocks at or before the own one (a query may pick
// one twice, as the reference then counts twice), the last slot empty. `hot` puts blocks 1 and
// 2 in the random slots of every query: thousands of queries select the same blocks. `disjoint`
// replaces all of it by random blocks of the query's residue (Case::disjoint).
torch::Tensor Indices(const Case& c, int64_t first, int64_t count, torch::Device device) {
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  torch::Tensor pos = torch::arange(first, first + count, opts).view({1, 1, count, 1});
  torch::Tensor own =
      torch::floor_divide(pos, c.block_size).expand({c.batch, c.kv_heads, count, 1});
  // Per slot offset + step x, x uniform in 0 .. choices - 1 (choices >= 1).
  auto random_blocks = [&](const torch::Tensor& choices, int64_t step,
                           const torch::Tensor& offset) {
    torch::Tensor x = torch::rand({c.batch, c.kv_heads, count, c.selected},
                                  opts.dtype(torch::kFloat32));
    return torch::floor(x * choices.to(torch::kFloat32)).to(torch::kInt64) * step + offset;
  };
  if (c.disjoint) {
    const torch::Tensor residue = torch::remainder(pos, 16);
    const torch::Tensor choices = torch::floor_divide(own - residue, 16) + 1;
    return torch::where(choices > 0, random_blocks(choices.clamp_min(1), 16, residue), -1)
        .to(torch::kInt32)
        .contiguous();
  }
  torch::Tensor random = random_blocks(own + 1, 1, torch::zeros_like(own));
  if (c.hot) random = (torch::arange(c.selected, opts) % 2 + 1).expand_as(random).clone();
  random.select(-1, 0).fill_(0);
  random.select(-1, 1).copy_(own.squeeze(-1));
  if (c.selected > 2) random.select(-1, 2).copy_((own.squeeze(-1) - 1).clamp_min(-1));
  if (c.selected > 3) random.select(-1, c.selected - 1).fill_(-1);
  return random.to(torch::kInt32).contiguous();
}

// Checks `ours` against `exact` within twice `torch_bf16`'s error (nsa_error_rule.h).
void ExpectWithinRule(const char* what, const Case& c, const torch::Tensor& ours,
                      const torch::Tensor& torch_bf16, const torch::Tensor& exact) {
  NsaExpectWithinRule(std::string(what) + " " + Describe(c), "kernel", ours, torch_bf16, exact);
}

struct Inputs {
  torch::Tensor q, k, v, d_o;  // bf16-rounded, fp32
};

Inputs RandomInputs(const Case& c, int64_t first_query = 0) {
  auto f32 = torch::TensorOptions().device(torch::kCUDA);
  auto round = [](torch::Tensor x) { return x.to(torch::kBFloat16).to(torch::kFloat32); };
  const int64_t tq = c.seq_len - first_query;
  return {round(torch::randn({c.batch, c.heads, tq, c.head_dim}, f32)),
          round(torch::randn({c.batch, c.kv_heads, c.seq_len, c.head_dim}, f32)),
          round(torch::randn({c.batch, c.kv_heads, c.seq_len, c.head_dim}, f32)),
          round(torch::randn({c.batch, c.heads, tq, c.head_dim}, f32))};
}

// Both ways the forward walks the blocks and both ways the backward forms dq, each checked
// wherever outputs and gradients are.
constexpr std::pair<NsaForwardPath, const char*> kForwardPaths[] = {
    {NsaForwardPath::kQueryBlocks, "by query blocks"},
    {NsaForwardPath::kByKeyBlock, "by key block"}};
constexpr std::pair<NsaDqPath, const char*> kDqPaths[] = {{NsaDqPath::kQueryBlocks, "dq kernel"},
                                                          {NsaDqPath::kInDkv, "dq in dk/dv"}};

// The forward's o and lse on poisoned buffers.
std::pair<torch::Tensor, torch::Tensor> Forward(const torch::Tensor& q, const torch::Tensor& k,
                                                const torch::Tensor& v, const torch::Tensor& idx,
                                                const Case& c, NsaForwardPath path,
                                                const torch::Tensor& shift = {}) {
  torch::Tensor o = torch::full_like(q, NAN);
  torch::Tensor lse =
      torch::full({c.batch, c.heads, c.seq_len}, NAN, q.options().dtype(torch::kFloat32));
  NsaSelectedForwardInto(q, k, v, idx, c.block_size, c.window, o, lse, path, shift);
  torch::cuda::synchronize();
  return {o, lse};
}

// Forward and backward of the kernels against the reference, all gradients, every path: each
// backward from each forward's o and lse. The forwards' lse agree to fp32 rounding, -inf (no
// key seen) in the same rows.
void CheckCase(const Case& c) {
  torch::manual_seed(c.seq_len * 131 + c.heads * 7 + c.head_dim + c.window);
  const Inputs in = RandomInputs(c);
  const torch::Tensor idx =
      c.window_blocks ? NsaWindowBlockIndices(c.batch, c.kv_heads, c.seq_len, c.block_size,
                                              c.window, torch::kCUDA)
                      : Indices(c, 0, c.seq_len, torch::kCUDA);

  // The fp32 reference and PyTorch's bf16 run, with their gradients. Inputs are detached:
  // to(kFloat32) of an fp32 tensor is that tensor, and marking it would make the next run's
  // copies non-leaf tensors whose .grad() stays undefined.
  auto reference = [&](torch::Dtype dtype) {
    torch::Tensor q = in.q.to(dtype).detach().requires_grad_(true);
    torch::Tensor k = in.k.to(dtype).detach().requires_grad_(true);
    torch::Tensor v = in.v.to(dtype).detach().requires_grad_(true);
    torch::Tensor o = c.window_blocks
                          ? NsaWindowReference(q, k, v, c.window)
                          : NsaSelectedReference(q, k, v, idx, c.block_size, 0, c.window);
    o.backward(in.d_o.to(dtype));
    return std::vector<torch::Tensor>{o.detach(), q.grad(), k.grad(), v.grad()};
  };
  const std::vector<torch::Tensor> exact = reference(torch::kFloat32);
  const std::vector<torch::Tensor> bf16 = reference(torch::kBFloat16);

  const torch::Tensor q = in.q.to(torch::kBFloat16), k = in.k.to(torch::kBFloat16);
  const torch::Tensor v = in.v.to(torch::kBFloat16), d_o = in.d_o.to(torch::kBFloat16);
  torch::Tensor first_lse;
  for (const auto& [forward, forward_name] : kForwardPaths) {
    const auto [o, lse] = Forward(q, k, v, idx, c, forward);
    const std::string f = std::string(" (") + forward_name;
    EXPECT_FALSE(torch::isnan(lse).any().item<bool>())
        << "lse has NaN" << f << "): " << Describe(c);
    ExpectWithinRule(("o" + f + ")").c_str(), c, o, bf16[0], exact[0]);
    if (!first_lse.defined()) {
      first_lse = lse;
    } else {
      const torch::Tensor seen = torch::isfinite(first_lse);
      EXPECT_TRUE(torch::equal(seen, torch::isfinite(lse))) << f << "): " << Describe(c);
      EXPECT_TRUE(
          torch::allclose(lse.masked_select(seen), first_lse.masked_select(seen), 1e-5, 1e-5))
          << "lse" << f << "): " << Describe(c);
    }
    for (const auto& [path, name] : kDqPaths) {
      torch::Tensor dq = torch::full_like(q, NAN);
      torch::Tensor dk = torch::full_like(in.k, NAN), dv = torch::full_like(in.v, NAN);
      NsaSelectedBackwardInto(q, k, v, idx, c.block_size, c.window, o, lse, d_o, dq, dk, dv,
                              path);
      const std::string b = f + ", " + name + ")";
      ExpectWithinRule(("dq" + b).c_str(), c, dq, bf16[1], exact[1]);
      ExpectWithinRule(("dk" + b).c_str(), c, dk, bf16[2], exact[2]);
      ExpectWithinRule(("dv" + b).c_str(), c, dv, bf16[3], exact[3]);
    }
  }
  // The one pass by key block on row shifts near each row's max (the exact lse less 2; rows
  // that see no key keep -inf, read as 0), and on shifts too far for fp32 (the lse plus 100),
  // where the call must fall back to the two passes: both give the two passes' o and lse.
  const torch::Tensor seen = torch::isfinite(first_lse);
  for (const double offset : {-2.0, 100.0}) {
    const auto [o, lse] =
        Forward(q, k, v, idx, c, NsaForwardPath::kByKeyBlock, (first_lse + offset).contiguous());
    const std::string f = " (by key block, shift lse " + std::to_string(offset) + "): ";
    ExpectWithinRule(("o" + f).c_str(), c, o, bf16[0], exact[0]);
    EXPECT_TRUE(torch::equal(seen, torch::isfinite(lse))) << f << Describe(c);
    EXPECT_TRUE(
        torch::allclose(lse.masked_select(seen), first_lse.masked_select(seen), 1e-5, 1e-5))
        << "lse" << f << Describe(c);
  }
}

TEST(NsaCudaTest, HeadRatiosAtHeadDim128) {
  REQUIRE_KERNELS();
  for (int64_t g : {1, 2, 4, 5, 8, 16}) CheckCase({.heads = 2 * g, .kv_heads = 2});
}

TEST(NsaCudaTest, HeadRatiosAtHeadDim64) {
  REQUIRE_KERNELS();
  for (int64_t g : {1, 2, 4, 5, 8, 16}) CheckCase({.heads = 2 * g, .kv_heads = 2, .head_dim = 64});
}

TEST(NsaCudaTest, HeadDim256AndBatch) {
  REQUIRE_KERNELS();
  CheckCase({.batch = 2, .heads = 8, .kv_heads = 2, .seq_len = 777, .head_dim = 256});
}

TEST(NsaCudaTest, OddLengthsAndBlockSizes) {
  REQUIRE_KERNELS();
  CheckCase({.heads = 16, .kv_heads = 1, .seq_len = 4099});
  CheckCase({.heads = 5, .kv_heads = 1, .seq_len = 1001, .block_size = 32});
  CheckCase({.heads = 8, .kv_heads = 2, .seq_len = 1500, .head_dim = 64, .block_size = 128,
             .selected = 8});
  CheckCase({.heads = 4, .kv_heads = 4, .seq_len = 37, .block_size = 64, .selected = 4});
}

// Block sizes off the kernels' key tiles (16 and 32 tokens per warp, 64 per dk/dv block): tiles
// cut inside every block, a dk/dv tile of 36 keys, blocks of 7 keys that leave most of a tile
// empty; at head dims 128, 256 (16 heads per group) and 64 (one head per group).
TEST(NsaCudaTest, BlockSizesOffTheTiles) {
  REQUIRE_KERNELS();
  CheckCase({.heads = 6, .kv_heads = 2, .seq_len = 1001, .block_size = 100, .selected = 8});
  CheckCase({.heads = 16, .kv_heads = 1, .seq_len = 531, .head_dim = 256, .block_size = 100,
             .selected = 6});
  CheckCase({.heads = 2, .kv_heads = 2, .seq_len = 300, .head_dim = 64, .block_size = 7});
}

TEST(NsaCudaTest, ManyQueriesSelectingTheSameBlocks) {
  REQUIRE_KERNELS();
  CheckCase({.heads = 16, .kv_heads = 2, .seq_len = 4099, .hot = true});
  CheckCase({.heads = 4, .kv_heads = 2, .seq_len = 3000, .head_dim = 64, .hot = true});
}

// The forward and dq kernels take Q = 16 / G queries per thread block: lengths Q does not divide
// (1003 leaves 3, 3, 1 and 1 queries in the last block at G = 2, 3, 5 and 6 or 7), on the selected
// and the window branch.
TEST(NsaCudaTest, LastQueryBlockPartial) {
  REQUIRE_KERNELS();
  for (int64_t g : {2, 3, 5, 6, 7}) {
    CheckCase({.heads = 2 * g, .kv_heads = 2, .seq_len = 1003});
    CheckCase({.heads = g, .kv_heads = 1, .seq_len = 1003, .head_dim = 64, .window = 512,
               .window_blocks = true});
  }
  CheckCase({.heads = 2, .kv_heads = 1, .seq_len = 13, .head_dim = 256, .block_size = 4});
}

// Queries of one thread block that share no block, early ones selecting nothing (o = 0,
// lse = -inf beside rows that see keys), at blocks of 8 and 100 keys, with and without a window,
// at every query count per block (G = 1, 2, 3, 4, 8, 16).
TEST(NsaCudaTest, QueriesOfABlockSelectingDisjointBlocks) {
  REQUIRE_KERNELS();
  for (int64_t g : {1, 2, 3, 4, 8, 16}) {
    CheckCase({.heads = 2 * g, .kv_heads = 2, .seq_len = 1003, .head_dim = 64, .block_size = 8,
               .disjoint = true});
  }
  CheckCase({.heads = 4, .kv_heads = 2, .seq_len = 2049, .block_size = 8, .disjoint = true,
             .window = 100});
  CheckCase({.heads = 6, .kv_heads = 2, .seq_len = 3001, .block_size = 100, .selected = 4,
             .disjoint = true});
}

// The window branch: blocks 64 with the window 512 the model uses, at every head ratio the
// kernels' row padding treats differently (1, 2, 5 and 16 heads per group), head dims 64 and
// 128, an odd length.
TEST(NsaCudaTest, WindowBranchHeadRatios) {
  REQUIRE_KERNELS();
  for (int64_t d : {64, 128}) {
    for (int64_t g : {1, 2, 5, 16}) {
      CheckCase({.heads = 2 * g, .kv_heads = 2, .seq_len = 1337, .head_dim = d, .window = 512,
                 .window_blocks = true});
    }
  }
}

// Windows that are not a multiple of the block (100 over blocks of 64: the first block cut
// inside a forward tile) and blocks off the kernels' tiles (100: a dk/dv tile of 36 keys, tiles
// below the window within a block), lengths shorter than the window and odd, batch 2, D 256.
TEST(NsaCudaTest, WindowBranchOffTheBlocks) {
  REQUIRE_KERNELS();
  for (int64_t l : {64, 100}) {
    for (int64_t w : {100, 512}) {
      CheckCase({.heads = 10, .kv_heads = 2, .seq_len = 1001, .block_size = l, .window = w,
                 .window_blocks = true});
      CheckCase({.heads = 16, .kv_heads = 1, .seq_len = 2049, .head_dim = 64, .block_size = l,
                 .window = w, .window_blocks = true});
    }
  }
  CheckCase({.heads = 4, .kv_heads = 2, .seq_len = 37, .window = 512, .window_blocks = true});
  CheckCase({.batch = 2, .heads = 8, .kv_heads = 2, .seq_len = 777, .head_dim = 256,
             .block_size = 100, .window = 100, .window_blocks = true});
}

// A window over selected blocks that lie wholly below it (the first block, random ones): the
// forward's and dq's tiles skip them, the reverse index leaves them out, dk/dv masks the rest.
TEST(NsaCudaTest, WindowOverSelectedBlocks) {
  REQUIRE_KERNELS();
  CheckCase({.heads = 16, .kv_heads = 2, .seq_len = 1500, .window = 100});
  CheckCase({.heads = 5, .kv_heads = 1, .seq_len = 2049, .head_dim = 64, .block_size = 100,
             .window = 512});
  CheckCase({.heads = 4, .kv_heads = 2, .seq_len = 3000, .hot = true, .window = 200});
}

// The last queries' outputs and dq (which depend on those queries alone) against the reference,
// for inputs too long for the reference whole; both dq paths.
void CheckLastQueries(const Case& c) {
  torch::manual_seed(3);
  const Inputs in = RandomInputs(c);
  const torch::Tensor idx = Indices(c, 0, c.seq_len, torch::kCUDA);
  const torch::Tensor q = in.q.to(torch::kBFloat16), k = in.k.to(torch::kBFloat16);
  const torch::Tensor v = in.v.to(torch::kBFloat16), d_o = in.d_o.to(torch::kBFloat16);
  const int64_t tail = 300, first = c.seq_len - tail;
  using torch::indexing::Slice;
  auto rows = [&](const torch::Tensor& x) { return x.index({Slice(), Slice(), Slice(first)}); };
  auto reference = [&](torch::Dtype dtype) {
    torch::Tensor qt = rows(in.q).contiguous().to(dtype).detach().requires_grad_(true);
    torch::Tensor out = NsaSelectedReference(qt, in.k.to(dtype), in.v.to(dtype),
                                             rows(idx).contiguous(), c.block_size, first);
    out.backward(rows(in.d_o).to(dtype));
    return std::vector<torch::Tensor>{out.detach(), qt.grad()};
  };
  const std::vector<torch::Tensor> exact = reference(torch::kFloat32);
  const std::vector<torch::Tensor> bf16 = reference(torch::kBFloat16);
  for (const auto& [forward, forward_name] : kForwardPaths) {
    const auto [o, lse] = Forward(q, k, v, idx, c, forward);
    ExpectWithinRule((std::string("o (last rows, ") + forward_name + ")").c_str(), c, rows(o),
                     bf16[0], exact[0]);
    EXPECT_FALSE(torch::isnan(o).any().item<bool>()) << forward_name;
    if (forward != NsaForwardPath::kQueryBlocks) continue;  // one forward feeds the backwards
    for (const auto& [path, name] : kDqPaths) {
      torch::Tensor dq = torch::full_like(q, NAN);
      torch::Tensor dk = torch::empty_like(in.k), dv = torch::empty_like(in.v);
      NsaSelectedBackwardInto(q, k, v, idx, c.block_size, /*window=*/0, o, lse, d_o, dq, dk, dv,
                              path);
      ExpectWithinRule((std::string("dq (last rows, ") + name + ")").c_str(), c, rows(dq),
                       bf16[1], exact[1]);
      EXPECT_FALSE(torch::isnan(dq).any().item<bool>()) << name;
      EXPECT_FALSE(torch::isnan(dk).any().item<bool>()) << name;
    }
  }
}

// q of more than 2^31 elements: 64-bit offsets. 16 heads x 2^20 + 5 tokens x 128, one query per
// thread block (G = 16); 2 heads x 2^23 + 5 tokens x 128, 8 queries per block (G = 2), the last
// block of 5.
TEST(NsaCudaTest, TensorsNear2To31Elements) {
  REQUIRE_KERNELS();
  CheckLastQueries({.heads = 16, .kv_heads = 1, .seq_len = (int64_t{1} << 20) + 5, .selected = 8});
  CheckLastQueries({.heads = 2, .kv_heads = 1, .seq_len = (int64_t{1} << 23) + 5, .selected = 8});
}

// A query head whose scores are all NaN (its q row NaN): the one pass's max passes NaN over, so
// only the NaN it leaves in its output row tells; it must fall back and give what the two passes
// give, NaN in that row (lse -inf), the other rows as they were.
TEST(NsaCudaTest, OnePassGivesTheTwoPassesNanRows) {
  REQUIRE_KERNELS();
  const Case c{.seq_len = 300};
  torch::manual_seed(5);
  const Inputs in = RandomInputs(c);
  torch::Tensor q = in.q.to(torch::kBFloat16);
  q.select(1, 3).select(1, 100).fill_(NAN);
  const torch::Tensor k = in.k.to(torch::kBFloat16), v = in.v.to(torch::kBFloat16);
  const torch::Tensor idx = Indices(c, 0, c.seq_len, torch::kCUDA);
  const auto [o2, lse2] = Forward(q, k, v, idx, c, NsaForwardPath::kByKeyBlock);
  const auto [o1, lse1] =
      Forward(q, k, v, idx, c, NsaForwardPath::kByKeyBlock, torch::zeros_like(lse2));
  const torch::Tensor nan = torch::isnan(o2);
  EXPECT_TRUE(nan.select(1, 3).select(1, 100).all().item<bool>());
  EXPECT_TRUE(torch::equal(torch::isnan(o1), nan));
  EXPECT_TRUE(torch::allclose(o1.masked_select(~nan).to(torch::kFloat32),
                              o2.masked_select(~nan).to(torch::kFloat32), 1e-2, 1e-2));
  EXPECT_TRUE(torch::equal(torch::isfinite(lse1), torch::isfinite(lse2)));
}

// The by-block passes over several launches (kNsaAccumBytes = 1 GiB of fp32 rows): at G = 2
// each pair's rows are 1 GiB, so the second pair runs in a launch of its own, its rows offset;
// at G = 1 they are 512 MiB, so five pairs run two, two and one to a launch.
TEST(NsaCudaTest, DqInDkvOverSeveralLaunches) {
  REQUIRE_KERNELS();
  static_assert(kNsaAccumBytes == int64_t{1} << 30);
  CheckLastQueries({.heads = 4, .kv_heads = 2, .seq_len = int64_t{1} << 20, .selected = 8});
  CheckLastQueries({.heads = 5, .kv_heads = 5, .seq_len = int64_t{1} << 20, .selected = 8});
}

// NsaAttend on CUDA (the fast path: compressed branch and selection in bf16, the kernels for the
// selected and window branches) against NsaAttend on the CPU (all reference), gates included,
// with the model's window 512 and without one. T <= n l, so every visible block is selected on
// both devices and the selection cannot differ by a near tie. q, k, v reach CUDA in `dtype`:
// fp32 takes the gate's own node, bf16 (the model's) nsa_sparse.h's, reading o_cmp in the fused
// attention's runs (fused_bytes: NsaOptions::fused_chunk_bytes; 1 makes a run per key/value
// head, and past kNsaGateMaxFoldedRuns of them they are unfolded for the separate nodes, as
// gates below 0 take them too). Some gates are 0 (a sigmoid's underflow): no gradient there.
// `vouched`: NsaOptions::gates_nonnegative, the sign then not read by the host.
void CheckNsaAttend(int64_t window, torch::Dtype dtype, int64_t fused_bytes = 0,
                    int64_t kv_heads = 2, bool negative_gates = false, bool vouched = false) {
  const Case c{.heads = 4 * kv_heads, .kv_heads = kv_heads, .seq_len = 1000, .window = window};
  torch::manual_seed(11);
  const Inputs in = RandomInputs(c);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  const torch::Tensor gates = torch::rand({c.batch, c.heads, c.seq_len, 3}, cuda);
  gates.narrow(2, 100, 40).select(3, 1).zero_();
  gates.narrow(2, 600, 40).select(3, 2).zero_();
  if (negative_gates) gates.narrow(2, 800, 10).select(3, 1).fill_(-0.25);
  NsaOptions options;
  options.shape = {c.block_size, c.selected, c.window};
  options.fused_chunk_bytes = fused_bytes;
  options.gates_nonnegative = vouched;
  auto run = [&](torch::Device device) {
    const torch::Dtype on = device.is_cuda() ? dtype : torch::kFloat32;
    torch::Tensor q = in.q.to(device, on).detach().requires_grad_(true);
    torch::Tensor k = in.k.to(device, on).detach().requires_grad_(true);
    torch::Tensor v = in.v.to(device, on).detach().requires_grad_(true);
    torch::Tensor g = gates.to(device).detach().requires_grad_(true);
    torch::Tensor o = NsaAttend(q, k, v, g, options);
    o.backward(in.d_o.to(device, o.scalar_type()));
    return std::vector<torch::Tensor>{o.detach().cpu(), q.grad().cpu(), k.grad().cpu(),
                                      v.grad().cpu(), g.grad().cpu()};
  };
  const std::vector<torch::Tensor> gpu = run(torch::kCUDA);
  const std::vector<torch::Tensor> cpu = run(torch::kCPU);
  // PyTorch's bf16 errors on the selected and compressed branches bound what the fast path may
  // add.
  const torch::Tensor idx = Indices(c, 0, c.seq_len, torch::kCUDA);
  // A reference branch in `dtype` (kSelected, kCompressed or kWindow): its output and the
  // gradients of q, k and v.
  enum Branch { kSelected, kCompressed, kWindow };
  auto reference = [&](Branch branch, torch::Dtype dtype) {
    torch::Tensor q = in.q.to(dtype).detach().requires_grad_(true);
    torch::Tensor k = in.k.to(dtype).detach().requires_grad_(true);
    torch::Tensor v = in.v.to(dtype).detach().requires_grad_(true);
    torch::Tensor o = branch == kSelected     ? NsaSelectedReference(q, k, v, idx, c.block_size)
                      : branch == kCompressed ? NsaCompressedReference(q, k, v, c.block_size)
                                              : NsaWindowReference(q, k, v, c.window);
    o.backward(in.d_o.to(dtype));
    return std::vector<torch::Tensor>{o.detach().cpu(), q.grad().cpu(), k.grad().cpu(),
                                      v.grad().cpu()};
  };
  const std::vector<torch::Tensor> b32 = reference(kSelected, torch::kFloat32);
  const std::vector<torch::Tensor> b16 = reference(kSelected, torch::kBFloat16);
  const std::vector<torch::Tensor> c32 = reference(kCompressed, torch::kFloat32);
  const std::vector<torch::Tensor> c16 = reference(kCompressed, torch::kBFloat16);
  std::vector<torch::Tensor> w32, w16;
  if (c.window > 0) {
    w32 = reference(kWindow, torch::kFloat32);
    w16 = reference(kWindow, torch::kBFloat16);
  }
  const char* names[] = {"NsaAttend o", "NsaAttend dq", "NsaAttend dk", "NsaAttend dv"};
  for (int i = 0; i < 4; ++i) {
    double baseline = NsaMeasure(b16[i], b32[i], -1).max + NsaMeasure(c16[i], c32[i], -1).max;
    if (c.window > 0) baseline += NsaMeasure(w16[i], w32[i], -1).max;
    const NsaError e = NsaMeasure(gpu[i], cpu[i], 2 * baseline + 1e-4);
    EXPECT_LE(e.max, 2 * baseline + 1e-4)
        << names[i] << " w=" << c.window << ": CUDA path error " << e.max
        << ", PyTorch bf16 branch error " << baseline << ", first over at " << e.first_over
        << " of " << cpu[i].sizes();
    std::cout << "  " << names[i] << " w=" << c.window << ": CUDA path " << e.max << ", bound "
              << 2 * baseline << "\n";
  }
  // The gates' gradient is a sum over D of the branches' rounding: relative to its size.
  const double scale = cpu[4].abs().max().item<double>();
  const NsaError e = NsaMeasure(gpu[4], cpu[4], 1e-2 * scale);
  EXPECT_LE(e.max, 1e-2 * scale) << "NsaAttend dgates w=" << c.window << ": error " << e.max
                                 << " of max " << scale;
}

TEST(NsaCudaTest, NsaAttendMatchesTheReference) {
  REQUIRE_KERNELS();
  CheckNsaAttend(512, torch::kFloat32);
  CheckNsaAttend(0, torch::kFloat32);
}

TEST(NsaCudaTest, NsaAttendInBf16MatchesTheReference) {
  REQUIRE_KERNELS();
  CheckNsaAttend(512, torch::kBFloat16);
  CheckNsaAttend(0, torch::kBFloat16);
  CheckNsaAttend(512, torch::kBFloat16, /*fused_bytes=*/1);
  CheckNsaAttend(512, torch::kBFloat16, /*fused_bytes=*/1, /*kv_heads=*/kNsaGateMaxFoldedRuns + 1);
  CheckNsaAttend(512, torch::kBFloat16, 0, 2, /*negative_gates=*/true);
  CheckNsaAttend(512, torch::kBFloat16, 0, 2, /*negative_gates=*/false, /*vouched=*/true);
}

}  // namespace
}  // namespace ablate::train
