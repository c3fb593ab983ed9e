#include "trainer_lib/attention/nsa_reverse_index.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

namespace ablate::train {
namespace {

// (pair, query, block) -> how many of the query's slots name the block.
using Entries = std::map<std::tuple<int64_t, int64_t, int64_t>, int>;

// The entries the header defines, slot by slot: the oracle.
Entries ExpectedEntries(const torch::Tensor& idx, int64_t l, int64_t w) {
  const auto a = idx.accessor<int32_t, 4>();
  Entries out;
  for (int64_t b = 0; b < idx.size(0); ++b) {
    for (int64_t h = 0; h < idx.size(1); ++h) {
      for (int64_t t = 0; t < idx.size(2); ++t) {
        for (int64_t s = 0; s < idx.size(3); ++s) {
          const int64_t c = a[b][h][t][s];
          if (c < 0 || c > t / l || (w > 0 && (c + 1) * l - 1 <= t - w)) continue;
          ++out[{b * idx.size(1) + h, t, c}];
        }
      }
    }
  }
  return out;
}

// Block indices [B, H_kv, T, n] with what the kernels meet: -1 slots, blocks past the query's
// own, duplicates within a query's slots, and block 0 chosen by most queries.
torch::Tensor RandomIndices(int64_t b, int64_t hkv, int64_t t, int64_t n, int64_t l) {
  const int64_t blocks = (t + l - 1) / l;
  torch::Tensor idx = torch::randint(-1, blocks, {b, hkv, t, n}, torch::kInt32);
  idx.select(3, 0).fill_(0);
  idx.select(3, n - 1).copy_(idx.select(3, n - 2));
  return idx;
}

// Every entry once in exactly one item; items no longer than asked, one chunk and ascending
// queries each; a pair's items contiguous, in (chunk, block) order; the kernels' list naming
// the pair and block.
void CheckIndex(const torch::Tensor& idx, int64_t l, int64_t w, int64_t chunk, int64_t per_item) {
  SCOPED_TRACE(testing::Message() << "idx " << idx.sizes() << " l " << l << " w " << w << " chunk "
                                  << chunk << " per item " << per_item);
  const NsaReverseIndex rev = NsaBuildReverseIndex(idx, l, w, chunk, per_item);
  const int64_t pairs = idx.size(0) * idx.size(1), blocks = (idx.size(2) + l - 1) / l;
  ASSERT_EQ(static_cast<int64_t>(rev.pair_items.size()), pairs + 1);
  ASSERT_EQ(rev.pair_items.back(), rev.items.size(0));
  ASSERT_EQ(rev.rev_query.scalar_type(), torch::kInt32);
  const auto items = rev.items.accessor<int64_t, 2>();
  const auto query = rev.rev_query.accessor<int32_t, 1>();
  Entries seen;
  int64_t covered = 0;
  for (int64_t pair = 0; pair < pairs; ++pair) {
    ASSERT_LE(rev.pair_items[pair], rev.pair_items[pair + 1]);
    std::tuple<int64_t, int64_t> last{-1, -1};  // (chunk, block) of the previous item
    for (int64_t i = rev.pair_items[pair]; i < rev.pair_items[pair + 1]; ++i) {
      const int64_t list = items[i][0], begin = items[i][1], end = items[i][2];
      ASSERT_EQ(list / blocks, pair) << "item " << i;
      ASSERT_GT(end, begin) << "item " << i;
      ASSERT_LE(end - begin, per_item) << "item " << i;
      ASSERT_EQ(begin, covered) << "item " << i << ": entries skipped or shared";
      covered = end;
      const int64_t block = list % blocks, first_chunk = query[begin] / chunk;
      const std::tuple<int64_t, int64_t> at{first_chunk, block};
      ASSERT_LE(last, at) << "item " << i << " out of (chunk, block) order";
      last = at;
      for (int64_t e = begin; e < end; ++e) {
        ASSERT_EQ(query[e] / chunk, first_chunk) << "entry " << e;
        if (e > begin) {
          ASSERT_LE(query[e - 1], query[e]) << "entry " << e;
        }
        ++seen[{pair, query[e], block}];
      }
    }
  }
  EXPECT_EQ(covered, rev.rev_query.size(0));
  EXPECT_EQ(seen, ExpectedEntries(idx, l, w));
}

TEST(NsaReverseIndexTest, EntriesAndItemsAcrossChunks) {
  torch::manual_seed(3);
  const torch::Tensor idx = RandomIndices(2, 3, 301, 5, 16);
  for (int64_t chunk : {int64_t{1} << 20, int64_t{64}, int64_t{7}, int64_t{1}}) {
    for (int64_t per_item : {256, 3, 1}) CheckIndex(idx, 16, 0, chunk, per_item);
  }
}

// Windows that cut blocks anywhere, blocks of one token and blocks longer than the sequence.
TEST(NsaReverseIndexTest, WindowsAndBlockSizes) {
  torch::manual_seed(4);
  for (int64_t w : {1, 3, 17, 100, 1000}) {
    CheckIndex(RandomIndices(1, 2, 157, 4, 8), 8, w, 32, 5);
  }
  CheckIndex(RandomIndices(1, 1, 50, 3, 1), 1, 0, 16, 4);
  CheckIndex(RandomIndices(1, 1, 50, 3, 1), 1, 5, 16, 4);
  CheckIndex(RandomIndices(1, 2, 40, 2, 64), 64, 0, 8, 2);
}

// The block indices may come as int64 (NsaBlockIndices' dtype) and hold -1 everywhere.
TEST(NsaReverseIndexTest, Int64IndicesAndEmptySlots) {
  torch::manual_seed(5);
  CheckIndex(RandomIndices(1, 2, 99, 3, 8), 8, 0, 16, 4);
  const torch::Tensor wide = RandomIndices(1, 2, 99, 3, 8).to(torch::kInt64);
  const torch::Tensor kept = wide.clone();
  const NsaReverseIndex a = NsaBuildReverseIndex(wide, 8, 0, 16, 4);
  EXPECT_TRUE(torch::equal(wide, kept)) << "the block indices were written";
  const NsaReverseIndex b = NsaBuildReverseIndex(wide.to(torch::kInt32), 8, 0, 16, 4);
  EXPECT_TRUE(torch::equal(a.rev_query, b.rev_query));
  EXPECT_TRUE(torch::equal(a.items, b.items));
  const NsaReverseIndex none =
      NsaBuildReverseIndex(torch::full({2, 1, 10, 2}, -1, torch::kInt32), 4, 0, 4, 8);
  EXPECT_EQ(none.rev_query.size(0), 0);
  EXPECT_EQ(none.items.size(0), 0);
  EXPECT_EQ(none.pair_items, (std::vector<int64_t>{0, 0, 0}));
}

TEST(NsaReverseIndexTest, RejectsBadSizes) {
  const torch::Tensor idx = torch::zeros({1, 1, 8, 2}, torch::kInt32);
  EXPECT_THROW(NsaBuildReverseIndex(idx, 0, 0, 4, 4), c10::Error);
  EXPECT_THROW(NsaBuildReverseIndex(idx, 4, -1, 4, 4), c10::Error);
  EXPECT_THROW(NsaBuildReverseIndex(idx, 4, 0, 0, 4), c10::Error);
  EXPECT_THROW(NsaBuildReverseIndex(idx, 4, 0, 4, 0), c10::Error);
  EXPECT_THROW(NsaBuildReverseIndex(idx.view({1, 8, 2}), 4, 0, 4, 4), c10::Error);
}

// The chunk lengths the benchmarks ran (docs/benchmarks.md): 32 MiB of rows a chunk where the
// items then still average 256 rows, longer where they would not, never past T's power of two.
TEST(NsaReverseIndexTest, QueryChunkLengths) {
  // fla's shape at 64K (G = 16, D = 128, n = 16, l = 64): 2048 queries of 16 KiB.
  EXPECT_EQ(NsaQueryChunk(16, 128, 65536, 16, 64), 2048);
  // Qwen3-0.6B (G = 2) at 128K: 16384 queries of 2 KiB.
  EXPECT_EQ(NsaQueryChunk(2, 128, 131072, 16, 64), 16384);
  // ... and at 1M, where 16384 would leave 32 rows an item: 131072.
  EXPECT_EQ(NsaQueryChunk(2, 128, 1 << 20, 16, 64), 131072);
  // A short sequence is one chunk: the first power of two at or past T.
  EXPECT_EQ(NsaQueryChunk(2, 128, 1000, 16, 64), 1024);
  EXPECT_EQ(NsaQueryChunk(1, 64, 1, 1, 1), 1);
}

// On a GPU the index comes from kernels (trainer_lib/kernels/nsa_reverse_index.h) where its sizes
// fit them: the same entries, order and items as the CPU's LibTorch build, checked above.
void ExpectGpuIndexIsTheCpus(const torch::Tensor& idx, int64_t l, int64_t w, int64_t chunk,
                             int64_t per_item) {
  SCOPED_TRACE(testing::Message() << "idx " << idx.sizes() << " " << idx.scalar_type() << " l "
                                  << l << " w " << w << " chunk " << chunk << " per item "
                                  << per_item);
  const NsaReverseIndex cpu = NsaBuildReverseIndex(idx, l, w, chunk, per_item);
  const NsaReverseIndex gpu = NsaBuildReverseIndex(idx.cuda(), l, w, chunk, per_item);
  ASSERT_TRUE(gpu.rev_query.is_cuda() && gpu.items.is_cuda());
  EXPECT_EQ(gpu.pair_items, cpu.pair_items);
  EXPECT_TRUE(torch::equal(gpu.rev_query.cpu(), cpu.rev_query));
  EXPECT_TRUE(torch::equal(gpu.items.cpu(), cpu.items));
}

TEST(NsaReverseIndexTest, OnTheGpuTheSameIndex) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU";
  torch::manual_seed(6);
  const torch::Tensor idx = RandomIndices(2, 3, 301, 5, 16);
  for (int64_t chunk : {int64_t{1} << 20, int64_t{64}, int64_t{7}, int64_t{1}}) {
    for (int64_t per_item : {256, 3, 1}) ExpectGpuIndexIsTheCpus(idx, 16, 0, chunk, per_item);
  }
  for (int64_t w : {1, 3, 17, 100, 1000}) {
    ExpectGpuIndexIsTheCpus(RandomIndices(1, 2, 157, 4, 8), 8, w, 32, 5);
  }
  ExpectGpuIndexIsTheCpus(RandomIndices(1, 1, 50, 3, 1), 1, 5, 16, 4);
  ExpectGpuIndexIsTheCpus(RandomIndices(1, 2, 40, 2, 64), 64, 0, 8, 2);
  ExpectGpuIndexIsTheCpus(RandomIndices(1, 2, 99, 3, 8).to(torch::kInt64), 8, 0, 16, 4);
  ExpectGpuIndexIsTheCpus(torch::full({2, 1, 10, 2}, -1, torch::kInt32), 4, 0, 4, 8);
  // fla's shape at 64K (a part of 64 queries a thread block, rounds of every slot), and
  // Qwen3-0.6B's 8 pairs at 128K with its window of 512.
  ExpectGpuIndexIsTheCpus(RandomIndices(1, 4, 65536, 16, 64), 64, 0, 2048, 256);
  ExpectGpuIndexIsTheCpus(RandomIndices(1, 8, 131072, 16, 64), 64, 512, 16384, 256);
  // More blocks than the kernels' cursors fit: LibTorch's build on the GPU.
  ExpectGpuIndexIsTheCpus(RandomIndices(1, 1, 50000, 2, 1), 1, 0, 4096, 64);
}

}  // namespace
}  // namespace ablate::train
