// NSA's block selection from q and the compressed keys in one CUDA kernel: the scores on bf16
// tensor cores, never written to memory. The rule is nsa_top_blocks.h's (fla-core 0.6.0's
// naive_nsa_topk with mean-pooled blocks, l = d = l'; reference: nsa_blocks.h's NsaTopBlocks),
// per query t and key/value head:
//
//   S_g[c]   = q_g(t) . k_cmp[c]                                  bf16 products, fp32 sums
//   P_g[c]   = softmax over c < (t + 1) / l of scale * S_g[c]     each of the group's G heads g
//   score[c] = mean over g of P_g[c];  1 for the forced blocks 0, t / l - 1 and t / l
//   kept     = the n highest-scoring blocks of 0 .. t / l, descending, ties to the lower block;
//              -1 in the slots left over
//
// with nsa_top_blocks.h's two departures from torch::topk (a NaN score never ranks; a block
// whose probability underflows to 0 is kept like any other).
//
// Why: the top-blocks kernel reads fp32 scores that a GEMM wrote per chunk of queries, 4 bytes
// per (query, head, visible block): about 8.6 GB written and 17 GB read a forward on Qwen3-0.6B's
// shape at 128K, where the products themselves are 0.6 TFLOP. Here they stay in registers.
//
// Design: a thread block of 8 warps per 128 / G queries (G = H / H_kv) and (b, h_kv); their
// 128 head rows (row g Q + i is head g of query t0 + i, Q = 128 / G, zeros past G Q) are a 16-row
// MMA tile per warp, held as A fragments in registers. The compressed keys stream through
// shared memory in double-buffered tiles of 64 blocks. Where the build targets sm_90a, each
// warpgroup's 64 rows take a tile's scores as D / 16 wgmmas (the tile 128-byte swizzled,
// wgmma_bf16.cuh), else each warp as mma.syncs; the tests choose the same blocks with either
// (on one H200 at fla's shape and 128K the compressed branch with the selection went from 69.5 to
// 67.2 ms: the scores were the lesser part of the kernel's 19.5 ms, its group means and ranking
// the greater). Pass 1 takes each row's max and sum of exp over its visible blocks (online, as
// FlashAttention-2, in log2 units so that each exp is one exp2); pass 2 recomputes the scores
// and writes each row's probabilities for the tile to shared memory. Where the caller has each
// row's log-sum-exp already (the compressed attention makes exactly it, nsa_compressed.h), pass 1
// is skipped and pass 2 takes
// P = exp2(scale log2(e) S - lse log2(e)): the keys stream and the scores are made once, not
// twice (on one H200 at Qwen3-0.6B's shape and 128K, the compressed branch with the selection
// took 16.8 ms a forward so, 19.3 with pass 1). After a barrier a warp per query sums the G rows
// of the tile's 64 blocks (a lane per block) and offers them to the query's running top n, kept
// sorted across the warp's lanes (a tile none of whose scores reaches the n-th's is passed over
// on a float compare): the forced blocks go in first; a few keys above the n-th go in
// one by one (the slots below each move down a lane); many (the first tiles) are sorted by a
// bitonic network and merged with the slots at once. Thread blocks are launched longest rows
// first. Rows past T and heads past G are zeros and never read.
// The scores' sums run in another order than cuBLAS's GEMM and the exps differ in their last
// bits from expf: selections can differ from the top-blocks kernel's in near-ties only.
// On one H200 at Qwen3-0.6B's shape and 128K (docs/benchmarks.md) the first form, a thread per
// query inserting one key at a time, took 34 ms where the GEMM and the top-blocks kernel took
// about 17: the insertions of the first tiles, serialized across a warp, were most of it.
//
// Shapes (contiguous, 16-byte aligned, 64-bit offsets):
//   q:         [groups * G, seq_len, D] bf16 ([B, H, T, D] with head h = h_kv G + g).
//   k_cmp:     [groups, compressed, D] bf16, compressed = seq_len / l (the full blocks' means);
//              may be null when compressed is 0.
//   lse:       [groups * G, seq_len] fp32 ([B, H, T]), or null: each (head, t)'s log of the sum
//              over c < (t + 1) / l of exp(scale * S[c]) (natural log, of the same bf16 q and
//              k_cmp; 4-byte alignment suffices); the rows t < l - 1, which see no block, are
//              never read.
//   block_idx: [groups, seq_len, n] int32, every slot of every row written.
// Limits: groups <= 65535, 0 < seq_len < 2^31, D in {64, 128, 256}, 1 <= G <= 128,
// 1 <= n <= kNsaSelectionMaxSelected, and NsaSelectionSharedBytes within the device's opt-in
// shared memory per block (at most 137 KiB: D = 256, G = 1, n = 32).
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_SELECTION_H_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_SELECTION_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace ablate::kernels {

// The most blocks a query keeps here: a query's running top n is held a slot per lane of one
// warp. More fall back to the top-blocks kernel.
inline constexpr int64_t kNsaSelectionMaxSelected = 32;
// The most query heads per key/value head: a thread block's 128 rows hold one query's heads.
inline constexpr int64_t kNsaSelectionMaxGroup = 128;

struct NsaSelectionParams {
  int64_t groups = 0;      // B * H_kv
  int64_t group_size = 0;  // G = H / H_kv
  int64_t seq_len = 0;     // T
  int64_t head_dim = 0;    // D
  int64_t compressed = 0;  // NF = T / l, k_cmp's rows per group
  int64_t block_size = 0;  // l
  int64_t selected = 0;    // n
  float scale = 0.0f;      // applied to the scores before the softmax, usually 1 / sqrt(D)
  const void* q = nullptr;
  const void* k_cmp = nullptr;
  // Each row's softmax log-sum-exp (Shapes, above): null runs pass 1 to make it.
  const float* lse = nullptr;
  int32_t* block_idx = nullptr;
};

// Dynamic shared memory per thread block: two key tiles, a tile of probabilities for the 128
// rows, and per query its running top n (n 8-byte keys and the smallest) and its own and last
// visible blocks.
size_t NsaSelectionSharedBytes(const NsaSelectionParams& p);

// Launch on `stream`; return the launch's error (cudaSuccess when it started).
// cudaErrorInvalidValue for sizes outside the limits above.
cudaError_t NsaSelection(const NsaSelectionParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_SELECTION_H_
