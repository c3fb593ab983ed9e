// NSA's block selection under fla's rule in one CUDA kernel, from a chunk of raw compressed
// scores. The rule and its reference are trainer_lib/attention/nsa_blocks.h's NsaTopBlocks
// (fla-core 0.6.0's naive_nsa_topk, mean-pooled blocks: l = d = l'); per query t and key/value
// head:
//
//   P_g[c]   = softmax over c < (t + 1) / l of scale * S_g[c]     each of the group's G heads g
//   score[c] = mean over g of P_g[c];  1 for the forced blocks 0, t / l - 1 and t / l
//   kept     = the n highest-scoring blocks of 0 .. t / l, descending, ties to the lower block;
//              -1 in the slots left over
//
// Every block 0 .. t / l is allowed under fla's rule (it ended by t, or it is t's own block,
// which is forced), so no mask is left to apply. Two departures from torch::topk's ranking, in
// cases a healthy run does not meet: a NaN score never ranks (topk ranks it first; a NaN makes
// its head's whole softmax NaN, so such a query keeps only its forced blocks), and a block
// whose probability underflows to exactly 0 is kept like any other (topk may rank a block the
// rule does not allow beside it, and the reference then leaves that slot -1).
//
// Design: a thread block of 128 threads per (query, b h_kv). Pass 1: each head row's online max
// and sum over the visible columns, a row to 4 / G warps where G < 4, four columns a lane per
// step. Pass 2: each block's group-mean probability into shared memory, the G rows read
// coalesced (pass 1 has just brought them into L2), each thread keeping its best. Then a filter:
// in each warp, n threads' bests are at least the warp's n-th largest best, so the top n are at
// least the largest such threshold, and every block below it is dropped. What is left goes,
// when it fits 256 candidates (where the scores are not built to defeat the filter, far fewer
// than the blocks), to one warp: n rounds of a warp-wide max of 64-bit (score, block) keys, in
// which only the lane that owned the round's winner rescans its share. Where more are left, the
// thread block runs n rounds of a block-wide argmax over every block instead. On one H200 the
// rounds over every block were most of the kernel's issued instructions (Qwen3-0.6B at 128K:
// 17 ms a forward, the integer pipe 72% busy); the filter took the compressed branch with the
// selection there from 24.9 to 21.6 ms a forward (docs/benchmarks.md). The kernel replaced the
// LibTorch chain it was (scale, mask, softmax, mean, copy, where, topk, gather: about ten passes
// over the chunk's fp32 scores) by two reads of them.
//
// Shapes (contiguous, 64-bit offsets):
//   scores:    [groups, G * queries, score_cols] fp32, row g * queries + i holding head g's
//              unscaled scores q k_cmp^T for query first_query + i over blocks 0 .. score_cols - 1;
//              score_cols at least the blocks the chunk's last query sees,
//              min((first_query + queries) / l, seq_len / l); columns past a query's visible
//              blocks are never read. May be null when score_cols is 0 (no query of the chunk
//              sees a block yet).
//   block_idx: [groups, seq_len, n] int32; rows first_query .. first_query + queries - 1 are
//              written, every slot.
// Limits: groups <= 65535, queries and seq_len < 2^31, 1 <= G <= kNsaTopBlocksMaxGroup, and the
// shared memory of
// NsaTopBlocksSharedBytes within the device's opt-in limit per block (227 KiB on Hopper: about
// 57,000 blocks, 3.6M tokens at l = 64).
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_TOP_BLOCKS_H_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_TOP_BLOCKS_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace ablate::kernels {

// The most query heads per key/value head: one thread of the 128 merges each head row's parts.
inline constexpr int64_t kNsaTopBlocksMaxGroup = 128;

struct NsaTopBlocksParams {
  int64_t groups = 0;       // B * H_kv
  int64_t group_size = 0;   // G = H / H_kv
  int64_t first_query = 0;  // t0, the chunk's first query position
  int64_t queries = 0;      // the chunk's queries
  int64_t score_cols = 0;   // columns of each score row
  int64_t seq_len = 0;      // T, block_idx's length
  int64_t block_size = 0;   // l
  int64_t selected = 0;     // n
  float scale = 0.0f;       // applied to the scores before the softmax, usually 1 / sqrt(D)
  const float* scores = nullptr;
  int32_t* block_idx = nullptr;
};

// Shared memory one thread block of this chunk needs, all of it dynamic: the filter's candidates
// and thresholds, the block-wide rounds' per-warp bests, the G rows' partial and whole max and
// inverse sum, and a score per block of the chunk's last query.
size_t NsaTopBlocksSharedBytes(const NsaTopBlocksParams& p);

// Launch on `stream`; return the launch's error (cudaSuccess when it started).
// cudaErrorInvalidValue for sizes outside the limits above.
cudaError_t NsaTopBlocks(const NsaTopBlocksParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_TOP_BLOCKS_H_
