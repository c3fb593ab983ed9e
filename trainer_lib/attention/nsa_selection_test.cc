// NSA's two selection kernels (nsa_selection.h) against the LibTorch chain they replace: the
// scaled, masked softmax of the compressed scores, the mean over the group and NsaTopBlocks
// (fla's rule).
//   - The top-blocks kernel (NsaTopBlocksInto) reads the same fp32 scores as the chain.
//   - The fused kernel (NsaSelectionInto) scores q k_cmp^T itself in bf16 products with fp32 sums;
//     the chain here gets the same products summed in fp64. Each case runs it twice: with its own
//     pass of softmax statistics, and with the log-sum-exp of the chain's fp64 scores given (in
//     fp32, as the compressed attention gives it).
// So the two sides may differ only where blocks' scores tie to fp32 rounding: the check compares
// the reference's scores of the blocks each side kept, sorted, rather than the block numbers.
// Outputs are poisoned first: rows outside a chunk must keep the poison and every slot inside
// must be written. Skips without a GPU and the kernels.
#include "trainer_lib/attention/nsa_selection.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>

#include "trainer_lib/attention/nsa_blocks.h"
#include "trainer_lib/attention/nsa_cuda.h"

namespace ablate::train {
namespace {

constexpr int32_t kPoison = 0x5eed;

struct Case {
  int64_t batch = 1;
  int64_t kv_heads = 2;
  int64_t group = 2;  // G
  int64_t seq_len = 4099;
  int64_t first_query = 0;
  int64_t queries = 4099;
  int64_t block_size = 64;
  int64_t selected = 16;
  double spread = 3.0;     // standard deviation of the unscaled scores
  int64_t head_dim = 128;  // the fused kernel's D (the scale is 1 / sqrt(D) for both)
  // Scores that defeat the kernel's filter (nsa_top_blocks.h, "Design"): block c scores
  // (c mod 128) / 100 + (c / 128) / 10^4, so each of the kernel's 128 threads holds a band of
  // its own and the top half of the warps' bands pass the threshold whole.
  bool banded = false;
  bool lse_given = false;  // the fused kernel's softmax statistics from the reference's lse
};

std::string Describe(const Case& c) {
  std::ostringstream s;
  s << "B=" << c.batch << " H_kv=" << c.kv_heads << " G=" << c.group << " T=" << c.seq_len
    << " queries " << c.first_query << "+" << c.queries << " l=" << c.block_size
    << " n=" << c.selected << " spread=" << c.spread << " D=" << c.head_dim
    << (c.lse_given ? " lse given" : "");
  return s.str();
}

// The scaled scores [B H_kv, G, queries, cols] of unscaled ones in the top-blocks kernel's layout,
// -inf where a block has not ended for the query ((c + 1) l - 1 > t).
torch::Tensor MaskedLogits(const torch::Tensor& scores, const Case& c, double scale) {
  const int64_t cols = scores.size(2);
  const auto long_opts = scores.options().dtype(torch::kInt64);
  torch::Tensor pos = torch::arange(c.first_query, c.first_query + c.queries, long_opts);
  torch::Tensor hidden = torch::arange(cols, long_opts).unsqueeze(0) >=
                         torch::floor_divide(pos + 1, c.block_size).unsqueeze(1);
  return (scores * scale)
      .view({c.batch * c.kv_heads, c.group, c.queries, cols})
      .masked_fill(hidden, -std::numeric_limits<double>::infinity());
}

// The group-mean probabilities [B, H_kv, queries, NB] the reference ranks, NB = the last
// query's own block + 1, with fla's forced blocks still unmarked (NsaTopBlocks marks them).
torch::Tensor ReferenceScores(const torch::Tensor& scores, const Case& c, double scale) {
  const int64_t cols = scores.size(2);
  // A query that sees no block has an all -inf row: its probabilities are 0, as Probs makes them.
  torch::Tensor p = torch::nan_to_num(torch::softmax(MaskedLogits(scores, c, scale), -1), 0.0);
  const int64_t blocks = (c.first_query + c.queries - 1) / c.block_size + 1;
  torch::Tensor mean = torch::zeros({c.batch, c.kv_heads, c.queries, blocks}, scores.options());
  mean.narrow(3, 0, std::min(cols, blocks))
      .copy_(p.mean(1)
                 .view({c.batch, c.kv_heads, c.queries, cols})
                 .narrow(3, 0, std::min(cols, blocks)));
  return mean;
}

// ours: the rows first_query .. first_query + queries - 1 of a kernel's selection; scores: those
// rows' unscaled compressed scores in the top-blocks kernel's layout (undefined when no query
// sees a block).
void Compare(const Case& c, const torch::Tensor& scores, const torch::Tensor& inside,
             double scale) {
  const int64_t cols = scores.defined() ? scores.size(2) : 0;
  const auto f32 = inside.options().dtype(torch::kFloat32);
  NsaShape shape;
  shape.block_size = c.block_size;
  shape.selected_blocks = c.selected;
  const torch::Tensor ranked =
      cols > 0 ? ReferenceScores(scores, c, scale)
               : torch::zeros({c.batch, c.kv_heads, c.queries,
                               (c.first_query + c.queries - 1) / c.block_size + 1},
                              f32);
  const torch::Tensor reference = NsaTopBlocks(ranked, c.first_query, shape).to(torch::kInt32);
  // Block 0 first: it is forced (score 1, which no probability exceeds) and the lowest block.
  EXPECT_TRUE(inside.select(-1, 0).eq(0).all().item<bool>()) << Describe(c);
  // The same number of kept blocks per query, and the same scores kept (forced ones as 1), to
  // the rounding of an exp of the scaled scores: 2^-24 of their largest size, four times over.
  const double largest_logit = cols > 0 ? (scores.abs().max().item<double>() * scale) : 0.0;
  const double tolerance = std::max(1e-6, 4 * std::ldexp(largest_logit, -24));
  EXPECT_TRUE(inside.ge(0).sum(-1).equal(reference.ge(0).sum(-1))) << Describe(c);
  const auto long_opts = f32.dtype(torch::kInt64);
  torch::Tensor own =
      torch::floor_divide(torch::arange(c.first_query, c.first_query + c.queries, long_opts),
                          c.block_size)
          .view({1, 1, c.queries, 1});
  torch::Tensor block = torch::arange(ranked.size(3), long_opts);
  torch::Tensor forced = (block == own) | (block == 0) | (block == own - 1);
  const torch::Tensor marked = torch::where(forced, 1.0, ranked);
  auto kept_scores = [&](const torch::Tensor& idx) {
    torch::Tensor slot = idx.to(torch::kInt64);
    return torch::where(slot.ge(0), marked.gather(-1, slot.clamp_min(0)), -1.0);
  };
  const torch::Tensor ours_kept = kept_scores(inside);
  const torch::Tensor reference_kept = std::get<0>(kept_scores(reference).sort(-1, true));
  // Ours come in descending score (by the reference's scores: to their rounding).
  if (c.selected > 1) {
    const torch::Tensor fall =
        ours_kept.narrow(-1, 0, c.selected - 1) - ours_kept.narrow(-1, 1, c.selected - 1);
    EXPECT_GE(fall.min().item<double>(), -tolerance) << Describe(c);
  }
  const double largest = (ours_kept - reference_kept).abs().max().item<double>();
  EXPECT_LE(largest, tolerance) << Describe(c);
  // No block twice in one query's slots.
  torch::Tensor sorted = std::get<0>(inside.sort(-1));
  torch::Tensor repeated =
      sorted.narrow(-1, 1, c.selected - 1).eq(sorted.narrow(-1, 0, c.selected - 1)) &
      sorted.narrow(-1, 1, c.selected - 1).ge(0);
  EXPECT_FALSE(repeated.any().item<bool>()) << Describe(c);
  const int64_t differ = (sorted != std::get<0>(reference.sort(-1))).any(-1).sum().item<int64_t>();
  std::cout << "  selection " << Describe(c) << ": largest kept-score difference " << largest
            << ", " << differ << " of " << c.batch * c.kv_heads * c.queries
            << " queries keep another block (a near-tie)\n";
}

void Check(const Case& c) {
  torch::manual_seed(c.seq_len * 31 + c.first_query + c.group);
  const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat32);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  // The columns a chunk's GEMM makes: the blocks that ended by its last query, all of them full.
  const int64_t cols =
      std::min(c.seq_len / c.block_size, (c.first_query + c.queries) / c.block_size);
  torch::Tensor scores;
  if (cols > 0) {
    scores = torch::randn({c.batch * c.kv_heads, c.group * c.queries, cols}, f32) * c.spread;
    if (c.banded) {
      const torch::Tensor col = torch::arange(cols, f32);
      scores.copy_((torch::remainder(col, 128) / 100 + torch::floor_divide(col, 128) / 1e4)
                       .expand_as(scores));
    }
  }
  torch::Tensor ours =
      torch::full({c.batch, c.kv_heads, c.seq_len, c.selected}, kPoison, f32.dtype(torch::kInt32));
  NsaTopBlocksInto(scores, c.group, c.first_query, c.queries, c.block_size, scale, ours);
  torch::cuda::synchronize();

  const torch::Tensor inside = ours.narrow(2, c.first_query, c.queries);
  EXPECT_FALSE(inside.eq(kPoison).any().item<bool>()) << "a slot left unwritten: " << Describe(c);
  EXPECT_TRUE(ours.narrow(2, 0, c.first_query).eq(kPoison).all().item<bool>())
      << "a row before the chunk written: " << Describe(c);
  const int64_t after = c.seq_len - c.first_query - c.queries;
  EXPECT_TRUE(ours.narrow(2, c.first_query + c.queries, after).eq(kPoison).all().item<bool>())
      << "a row after the chunk written: " << Describe(c);
  Compare(c, scores, inside, scale);
}

// The fused kernel on random q and k_cmp (std 1 and spread / sqrt(D): unscaled scores of std
// about `spread`), every row written, the rows first_query .. + queries compared; once making its
// own softmax statistics and once from the log-sum-exp of the reference's scores. Rows outside
// the compared ones get an lse of +inf (every probability 0): they are only checked to be written.
void CheckFused(const Case& c) {
  torch::manual_seed(c.seq_len * 37 + c.first_query + c.group + c.head_dim);
  const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat32);
  const int64_t h = c.kv_heads * c.group, nf = c.seq_len / c.block_size, d = c.head_dim;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const torch::Tensor q = torch::randn({c.batch, h, c.seq_len, d}, f32.dtype(torch::kBFloat16));
  const torch::Tensor k_cmp =
      (torch::randn({c.batch, c.kv_heads, nf, d}, f32) * (c.spread / std::sqrt(double(d))))
          .to(torch::kBFloat16);
  ASSERT_TRUE(NsaSelectionKernelTakes(q, c.kv_heads, c.block_size, c.selected)) << Describe(c);

  const int64_t cols = std::min(nf, (c.first_query + c.queries) / c.block_size);
  torch::Tensor scores;
  torch::Tensor lse =
      torch::full({c.batch, h, c.seq_len}, std::numeric_limits<float>::infinity(), f32);
  if (cols > 0) {
    const torch::Tensor rows = q.narrow(2, c.first_query, c.queries)
                                   .to(torch::kFloat64)
                                   .reshape({c.batch * c.kv_heads, c.group * c.queries, d});
    const torch::Tensor keys =
        k_cmp.narrow(2, 0, cols).to(torch::kFloat64).reshape({c.batch * c.kv_heads, cols, d});
    const torch::Tensor products = torch::bmm(rows, keys.transpose(1, 2));
    lse.narrow(2, c.first_query, c.queries)
        .copy_(MaskedLogits(products, c, scale).logsumexp(-1).view({c.batch, h, c.queries}));
    scores = products.to(torch::kFloat32);
  }
  for (const bool given : {false, true}) {
    Case run = c;
    run.lse_given = given;
    torch::Tensor ours = torch::full({c.batch, c.kv_heads, c.seq_len, c.selected}, kPoison,
                                     f32.dtype(torch::kInt32));
    NsaSelectionInto(q, k_cmp, given ? lse : torch::Tensor(), c.block_size, ours);
    torch::cuda::synchronize();
    EXPECT_FALSE(ours.eq(kPoison).any().item<bool>()) << "a slot left unwritten: " << Describe(run);
    Compare(run, scores, ours.narrow(2, c.first_query, c.queries), scale);
  }
}

// Cases both kernels run: two batches of three key/value heads at blocks of 32; and scores
// near-uniform (many near-ties), with one block per row far above the rest, and with one head
// whose best block takes all the probability, which rounding may put a last bit above the forced
// blocks' 1 that it must not outrank (block 0 always comes first).
const Case kBatched{.batch = 2,
                    .kv_heads = 3,
                    .group = 4,
                    .seq_len = 1001,
                    .queries = 1001,
                    .block_size = 32,
                    .selected = 8};
const Case kSpreads[] = {{.group = 2, .spread = 1e-3},
                         {.group = 16, .spread = 60.0},
                         {.group = 1, .selected = 1, .spread = 300.0, .head_dim = 64},
                         {.group = 1, .selected = 4, .spread = 300.0}};

#define REQUIRE_KERNELS()                                                            \
  if (!NsaKernelsEnabled() || !torch::cuda::is_available()) {                        \
    GTEST_SKIP() << "needs the NSA kernels (nvcc and LibTorch with CUDA) and a GPU"; \
  }

TEST(NsaTopBlocksTest, GroupSizesAgainstTheLibTorchChain) {
  REQUIRE_KERNELS();
  // G = 3 leaves a warp idle in pass 1 (a row to each of three); n = 40 is past a warp's 32
  // threads, so the filter passes every block and the candidates' count decides the path.
  for (int64_t g : {1, 2, 3, 5, 8, 16}) Check({.group = g});
  Check({.group = 2, .selected = 40});
  Check(kBatched);
}

TEST(NsaTopBlocksTest, ChunksInsideTheSequence) {
  REQUIRE_KERNELS();
  // A chunk in the middle, one whose queries see no block yet, one that starts mid-block.
  Check({.group = 4, .seq_len = 5000, .first_query = 2048, .queries = 1000});
  Check({.group = 2, .seq_len = 5000, .first_query = 0, .queries = 40});
  Check({.group = 8,
         .seq_len = 777,
         .first_query = 333,
         .queries = 444,
         .block_size = 100,
         .selected = 3});
}

TEST(NsaTopBlocksTest, FlatAndSharpScores) {
  REQUIRE_KERNELS();
  for (const Case& c : kSpreads) Check(c);
}

TEST(NsaTopBlocksTest, MillionTokenQueriesNeedOptInSharedMemory) {
  REQUIRE_KERNELS();
  // The last queries of 2^20 tokens rank 16,384 blocks: 64 KiB of scores, past the 48 KiB a
  // kernel gets without opting in.
  Check(
      {.kv_heads = 1, .group = 2, .seq_len = 1 << 20, .first_query = (1 << 20) - 5, .queries = 5});
}

TEST(NsaTopBlocksTest, SharedMemoryAtExactlyTheDefaultLimit) {
  REQUIRE_KERNELS();
  // G = 4 and 11,743 blocks: 260 64-bit candidate and threshold slots, then (1 count + 8 warp
  // slots + 2 x 4 partial + 2 G + 11,743) floats, exactly 48 KiB, the most a kernel gets without
  // opting in.
  Check({.kv_heads = 1, .group = 4, .seq_len = 751493, .first_query = 751488, .queries = 5});
}

TEST(NsaTopBlocksTest, ScoresThatDefeatTheFilter) {
  REQUIRE_KERNELS();
  // 4,096 blocks: about 480 pass the filter, past its 256 candidates, so the thread block's own
  // rounds rank them; and 1,024 blocks, where the candidates fit.
  Check({.kv_heads = 1,
         .group = 1,
         .seq_len = 1 << 18,
         .first_query = (1 << 18) - 3,
         .queries = 3,
         .banded = true});
  Check({.kv_heads = 2,
         .group = 2,
         .seq_len = 1 << 16,
         .first_query = (1 << 16) - 100,
         .queries = 100,
         .banded = true});
}

TEST(NsaTopBlocksTest, RefusesFewerColumnsThanTheQueriesSee) {
  REQUIRE_KERNELS();
  const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat32);
  torch::Tensor idx = torch::zeros({1, 1, 640, 4}, f32.dtype(torch::kInt32));
  // Queries 0 .. 639 of blocks of 64 see 10 blocks; 9 columns would narrow their softmax.
  const torch::Tensor scores = torch::randn({1, 2 * 640, 9}, f32);
  EXPECT_THROW(NsaTopBlocksInto(scores, 2, 0, 640, 64, 0.1, idx), c10::Error);
}

// A NaN score makes its head's softmax NaN for every query that sees it, so each block such a
// query can see scores NaN, and NaN never ranks (torch::topk would rank it first): those queries
// keep fla's forced blocks alone (0, own - 1, own). Queries before the NaN column rank as usual.
// Every slot is still written.
TEST(NsaTopBlocksTest, NanScoresNeverRank) {
  REQUIRE_KERNELS();
  const auto f32 = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat32);
  const int64_t t = 1000, g = 2, l = 64, n = 8;
  torch::Tensor scores = torch::randn({1, g * t, t / l}, f32);
  scores.narrow(1, 0, t).select(2, 5).fill_(std::numeric_limits<float>::quiet_NaN());
  torch::Tensor idx = torch::full({1, 1, t, n}, kPoison, f32.dtype(torch::kInt32));
  NsaTopBlocksInto(scores, g, 0, t, l, 0.1, idx);
  EXPECT_FALSE(idx.eq(kPoison).any().item<bool>());
  const torch::Tensor pos = torch::arange(t, f32.dtype(torch::kInt64));
  const torch::Tensor own = torch::floor_divide(pos, l);
  // Block 5 is visible from query 6 l - 1 on.
  const torch::Tensor want = torch::where(pos >= 6 * l - 1, 3, (own + 1).clamp_max(n));
  EXPECT_TRUE(idx.ge(0).sum(-1).view({t}).equal(want)) << idx.ge(0).sum(-1).view({t});
}

TEST(NsaSelectionTest, GroupSizesAndHeadDims) {
  REQUIRE_KERNELS();
  // G = 3, 5 and 20 leave rows of the thread block's 128 empty (42, 25 and 6 queries of G rows).
  for (int64_t g : {1, 2, 3, 5, 8, 16, 20}) CheckFused({.group = g});
  CheckFused({.group = 4, .head_dim = 64});
  CheckFused({.group = 2, .head_dim = 256});
  CheckFused(kBatched);
}

TEST(NsaSelectionTest, FewAndManySelectedBlocks) {
  REQUIRE_KERNELS();
  // n = 1 and 2 keep only forced blocks, the lower first; n = 32 is the kernel's most.
  CheckFused({.group = 2, .selected = 1});
  CheckFused({.group = 2, .selected = 2});
  CheckFused({.group = 1, .selected = 32});
  // Blocks of 100 over 777 tokens: the last block and the last query tile are partial.
  CheckFused({.group = 8, .seq_len = 777, .queries = 777, .block_size = 100, .selected = 3});
  // No block ends before the last query.
  CheckFused({.group = 2, .seq_len = 63, .queries = 63});
}

TEST(NsaSelectionTest, FlatAndSharpScores) {
  REQUIRE_KERNELS();
  for (const Case& c : kSpreads) CheckFused(c);
}

TEST(NsaSelectionTest, PastTwoToTheThirtyOneElements) {
  REQUIRE_KERNELS();
  // q is 8 x 2 x (2^20 + 100) x 128 bf16: offsets past 2^31 elements; the last queries rank
  // 16,385 blocks over 257 key tiles.
  const int64_t t = (int64_t{1} << 20) + 100;
  CheckFused({.kv_heads = 8, .group = 2, .seq_len = t, .first_query = t - 5, .queries = 5});
  CheckFused({.kv_heads = 8, .group = 2, .seq_len = t, .first_query = t / 2, .queries = 3});
}

TEST(NsaSelectionTest, TakesOnlyWhatItCanRun) {
  REQUIRE_KERNELS();
  const auto bf = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  const torch::Tensor q = torch::randn({1, 4, 256, 128}, bf);
  EXPECT_TRUE(NsaSelectionKernelTakes(q, 2, 64, 32));
  EXPECT_FALSE(NsaSelectionKernelTakes(q, 2, 64, 33));  // past the kernel's n
  EXPECT_FALSE(NsaSelectionKernelTakes(q, 3, 64, 16));  // H not a multiple of H_kv
  EXPECT_FALSE(NsaSelectionKernelTakes(torch::randn({1, 4, 256, 80}, bf), 2, 64, 16));  // D
  EXPECT_FALSE(NsaSelectionKernelTakes(q.cpu(), 2, 64, 16));
  // k_cmp must hold T / l blocks: fewer would narrow the softmax.
  torch::Tensor idx = torch::zeros({1, 2, 256, 4}, bf.dtype(torch::kInt32));
  const torch::Tensor no_lse;
  EXPECT_THROW(NsaSelectionInto(q, torch::randn({1, 2, 3, 128}, bf), no_lse, 64, idx), c10::Error);
  // lse must be [B, H, T] fp32.
  const torch::Tensor k_cmp = torch::randn({1, 2, 4, 128}, bf);
  const auto f32 = bf.dtype(torch::kFloat32);
  EXPECT_THROW(NsaSelectionInto(q, k_cmp, torch::zeros({1, 4, 255}, f32), 64, idx), c10::Error);
  EXPECT_THROW(NsaSelectionInto(q, k_cmp, torch::zeros({1, 4, 256}, bf), 64, idx), c10::Error);
}

}  // namespace
}  // namespace ablate::train
