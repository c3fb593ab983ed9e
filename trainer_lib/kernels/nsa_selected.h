// CUDA kernels for the selected branch of Native Sparse Attention (Yuan et al. 2025, arXiv
// 2502.11089, eqs. 8-12): each query attends to the tokens s <= t of the key blocks chosen for
// it. The math is trainer_lib/attention/nsa.h's branch 2 (fla's naive_nsa_selection):
//
//   S[g][s] = scale q[h][t] . k[h_kv][s]     over s in the chosen blocks, t - w < s <= t
//   o[h][t] = softmax_s(S[g]) v[h_kv]        lse[h][t] = log sum_s exp(S[g][s])
//
// with h = h_kv * G + g, G = H / H_kv, every slot of block_idx holding a block number or -1
// (empty), and w = window, 0 meaning no lower bound. With w > 0 and the blocks that the window
// (t - w, t] touches, this is nsa.h's branch 3, the sliding window (flash-attn's window_size =
// (w - 1, 0)). A query that sees no key gets o = 0 and lse = -inf. Backward (FlashAttention-2's,
// Dao 2023, with delta = rowsum(do * o)):
//   P = exp(S - lse),  dP = do v^T,  dS = P * (dP - delta),
//   dq = scale dS k,   dk = scale sum dS^T q,   dv = sum P^T do
// where the sums run over every (query, head) that selected the key.
//
// Design (bf16 tensor cores, mma.sync m16n8k16 with fp32 accumulation; P and dS are rounded to
// bf16 before their products, as FlashAttention-2 does; trainer_lib/kernels/mma_bf16.cuh):
//  - Forward and dq by query blocks (NsaSelectedForward, NsaSelectedBackwardDq): one thread
//    block of 4 warps per (b, h_kv, Q = 16 / G consecutive queries;
//    Q = 1 for G > 8). The MMA's 16 rows are the Q queries' G heads, row qi G + g, zero rows
//    below Q G. One query per block (the paper's group-centric loading alone) left 14 of the 16
//    rows as padding at Qwen3-0.6B's G = 2 (12 at 4B's G = 4), and every query loaded its
//    selected blocks alone though neighbours mostly select the same ones. The block builds the
//    union of its queries' selected blocks in shared memory (nsa_query_block.cuh), each entry
//    with the queries that take it; a block one query's list holds twice has two entries, so
//    that it counts twice for that query, as in the reference. An entry, cut to the keys its
//    queries see (t_first - w, t_last] (one wholly outside is not an entry), is cut into key
//    tiles of 32 tokens (16 at D = 256; the last of an entry cut at its block's end and at
//    t_last) dealt to the warps in turn; a warp copies its K and V tiles into its own shared
//    memory (cp.async, zeros past the end) and keeps S, P and its output in registers, each
//    row masked to the keys its own query sees (it takes the entry, t - w < s <= t). Forward:
//    an online softmax in base 2 per warp and row, the 4 warps' (max, sum, output) merged
//    through shared memory at the end. dq: P = exp(S - lse), dS, dq += dS K per warp, the 4
//    partial sums added at the end. The last block of a sequence that Q does not divide has
//    rows without a query: zero, masked, never written.
//  - dk/dv: the reverse index. The caller groups the (query, slot) pairs by selected block
//    and query chunk (a CSR list per (b, h_kv, chunk of queries, block)) and cuts each list
//    into work items of at most kNsaQueriesPerItem queries, a pair's items chunk by chunk so
//    that the rows the running thread blocks gather and add into stay in L2 (the caller's
//    choice; the kernels take the items in any order). A thread block per (item, 64-token
//    tile of the block) keeps the tile's K and V in shared memory and walks the item's (query,
//    head) pairs 32 at a time at D = 128, 16 elsewhere (registers; nsa_backward_by_block.cu's
//    DkvTiles), their q and do rows double-buffered with cp.async (each row's place in q's
//    layout and the tile's keys its query sees, as two 32-bit bounds, computed once by one
//    thread two steps ahead, nsa_by_block.cuh's ForEachStep). Everything is computed
//    transposed, so that P^T and dS^T come out as the A operand of the next products: for its
//    16 keys a warp forms S^T = K q^T, dP^T = V do^T, P^T = exp(S^T - lse) (zero unless
//    t - w < s <= t), dS^T = P^T (dP^T - delta), and accumulates dv += P^T do, dk += dS^T q in
//    fp32 registers (at D = 256 two warps share the keys, each owning 128 columns); a warp whose 16
//    keys no row of the step sees skips the step's products. At the end it adds them into fp32 dk,
//    dv with atomicAdd: a block chosen by many queries (the first block is chosen by every query)
//    is split over many items, and a duplicate (query, block) pair is simply summed twice, as the
//    reference's gather would. Needs sm_90: the atomics add 8 bytes at a time (float2 atomicAdd,
//    each lane its own two columns; docs/benchmarks.md has the float4 form measured). At D = 128 on a device of compute
//    capability 9.0, where the build holds sm_90a code, the block's 4 warps are one warpgroup on
//    Hopper's wgmma instead (wgmma_bf16.cuh): 64 rows a step, S^T, dP^T and dq's dS K with both
//    operands in 128-byte-swizzled shared tiles, dv and dk with P^T and dS^T as register A; the
//    same math and rounding, 32 wgmmas per 64 rows where the 4 warps issued 1,280 mma.syncs,
//    each with its fragment loads (on one H200 at fla's shape, 64K: 37.8 to 28.8 ms, the kernel
//    then bound by L2's throughput for the gathered rows and dq's atomics).
//  - The forward by key block (each block's K and V read once, where the query blocks read a
//    query's blocks for each query, and at small G mostly for masked rows): the dk/dv kernel's
//    items and tiles, each warp taking 16 of a step's 64 rows against the tile's 64 keys
//    (FlashAttention-2's forward layout, the rows gathered). Pass 1: S, the row's max m and sum l
//    over the tile, merged into the row's (m, l) with a 64-bit atomicCAS (the online softmax's
//    merge, in any order). Pass 2: S again, P = exp2(S - lse2) exact, and P V added into fp32 rows:
//    each warp writes its 16 rows as fp32 over its own q rows in shared memory, half the columns
//    at a time, and the copy engine adds each row into global memory (bulk_add.cuh; on one H200
//    at fla's 64K a launch went from 7.50 to 6.65 ms against float4 atomics, which sent a request
//    per 16 bytes; the dk/dv kernel's dq gained nothing so, docs/benchmarks.md). Three products
//    where the query blocks' forward has two, but no row is masked out of a tile it does not
//    select. Given a shift per row near its max (row_shift), one pass instead: P' = exp2(S -
//    shift) unnormalised, P' V added the same way and the row's sum and max with atomics, then a
//    division (NsaSelectedForwardByBlockFinish). A warp whose 16 rows all see the whole tile (a
//    block wholly before its queries, the usual case) skips the masks.
//  - dq in the dk/dv kernel (accum set): each step's warps also write their dS^T into shared
//    memory as dS [step rows][64 keys] bf16; warp w then forms dq[rows][its D / warps columns] =
//    dS K over the tile's keys and adds it into an fp32 buffer with atomicAdd (FlashAttention-2's
//    dq accumulation). It saves the dq kernel's second walk over every query's blocks (at small
//    G the union of Q queries' blocks, most rows masked) for one product and one fp32 atomic
//    per (row, block, column): on one H200, 2.8x faster at G = 2 and 1.2x at G = 16.
//  - The atomics make o, lse (by key block), dq (in dk/dv) and dk, dv vary from run to run in
//    their last bits: fp32 sums in the order the thread blocks reach them.
//
// Shapes (all contiguous, 64-bit offsets everywhere):
//   q, o, do, dq: [B, H, T, D] bf16;  k, v: [B, H_kv, T, D] bf16;  lse, delta: [B, H, T] fp32
//   block_idx: [B, H_kv, T, n] int32;  dk, dv: [B, H_kv, T, D] fp32, accumulated into (the
//   caller zeroes them).  D in {64, 128, 256}; 1 <= G <= 16; any block size >= 1; T < 2^31;
//   n < 2^31.
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_SELECTED_H_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_SELECTED_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ablate::kernels {

// Queries per dk/dv work item: bounds the serial work of one thread block.
inline constexpr int64_t kNsaQueriesPerItem = 256;

struct NsaSelectedParams {
  int64_t batch = 0;
  int64_t heads = 0;     // H
  int64_t kv_heads = 0;  // H_kv, dividing H
  int64_t seq_len = 0;   // T
  int64_t head_dim = 0;  // D
  int64_t block_size = 0;
  int64_t selected = 0;  // n, slots per query
  int64_t window = 0;    // w: key s is seen by query t only if s > t - w; 0: no lower bound
  float scale = 0.0f;    // usually 1 / sqrt(D)
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const int32_t* block_idx = nullptr;
  // Forward writes these.
  void* o = nullptr;
  float* lse = nullptr;
  // Backward reads o's gradient and delta, writes dq and adds into dk, dv.
  const void* d_o = nullptr;
  const float* delta = nullptr;
  void* dq = nullptr;
  float* dk = nullptr;
  float* dv = nullptr;
  // The reverse index of the by-block kernels (dk/dv, and the forward by key block): rev_query[e]
  // is the query position of entry e; items [num_items, 3] int64 rows (list, first entry, end
  // entry), list = (b * H_kv + h_kv) * NB + block, NB = ceil(T / block_size): an item's at most
  // kNsaQueriesPerItem entries are queries that selected that block of that (b, h_kv) pair.
  const int32_t* rev_query = nullptr;
  const int64_t* items = nullptr;
  int64_t num_items = 0;
  // fp32 rows that the by-block passes add into with atomics: row i is row accum_row0 + i of q's
  // layout [B * H * T, D]; the launch's items must only name (b, h_kv) whose query rows lie in
  // it. Set for NsaSelectedBackwardDkv, it also adds dq's scale dS K there, and
  // NsaSelectedBackwardDq is not needed; NsaSelectedForwardByBlockOutput adds o's P V there (P
  // normalised by the row's statistics).
  float* accum = nullptr;
  int64_t accum_row0 = 0;
  // The forward by key block's softmax statistics: per row of q's layout, (m, l) = (the max of
  // scale log2(e) q.k over the keys the row sees, the sum of 2^(scale log2(e) q.k - m)) as two
  // floats in one 64-bit word, (-inf, 0) before any key (the caller fills it so).
  unsigned long long* row_stats = nullptr;
  // The forward by key block in one pass (NsaSelectedForwardByBlockOutput with row_shift set): per
  // row of q's layout a shift m, natural log (one not finite is taken as 0), that the pass takes
  // in place of the statistics pass's exact max, P' = exp(scale q.k - m) unnormalised; it adds
  // each row's sum of P' into row_sum (fp32, zeroed by the caller) and keeps the row's max of
  // scale log2(e) q.k in row_max (an int that orders as the float: a negative float's bits with
  // the low 31 flipped; the caller fills it with -inf's, 0x807fffff).
  // NsaSelectedForwardByBlockFinish then divides.
  const float* row_shift = nullptr;
  float* row_sum = nullptr;
  int* row_max = nullptr;
  // The dk/dv kernels (NsaSelectedBackwardDkv with accum set) skip every entry whose block is
  // one of the local_blocks last of its query, t / l - local_blocks < block <= t / l, in each
  // slot that holds it: another kernel takes their dq, dk and dv (nsa_window.h's `local`,
  // sharing the window's products). 0: none skipped. The other kernels ignore it.
  int64_t local_blocks = 0;
  // The forward by key block skips every item of block 0 when set: another kernel wrote its
  // terms where the rows start (nsa_window.h's local_accum). The other kernels ignore it.
  bool skip_first_block = false;
};

// True when the kernels take these sizes (D, G, positive sizes, T and n < 2^31, window >= 0).
bool NsaSelectedSupported(const NsaSelectedParams& p);

// Launch on `stream`; return the launch's error (cudaSuccess when it started).
cudaError_t NsaSelectedForward(const NsaSelectedParams& p, cudaStream_t stream);
// The forward by key block, in two passes over the dk/dv kernel's items: the statistics into
// row_stats, then P V into accum, P = 2^(scale log2(e) q.k - m - log2 l). The caller divides
// nothing (P is already normalised) and takes lse = (m + log2 l) ln 2.
cudaError_t NsaSelectedForwardByBlockStats(const NsaSelectedParams& p, cudaStream_t stream);
cudaError_t NsaSelectedForwardByBlockOutput(const NsaSelectedParams& p, cudaStream_t stream);
// After the one-pass output (row_shift set) over a run of `rows` rows from accum_row0: o's rows
// = accum's / row_sum (bf16), lse = m + ln(row_sum); a row without a key (row_max -inf) gets
// o = 0 and lse = -inf. Sets *inexact (an int the caller zeroed) to 1 where the shift was too far
// from a row's max for fp32 to hold P' (kNsaMaxShiftGap) or an output is not finite: the caller
// then runs the two passes instead.
cudaError_t NsaSelectedForwardByBlockFinish(const NsaSelectedParams& p, int64_t rows, int* inexact,
                                            cudaStream_t stream);
// How far, in log2 units, a row's max may lie from its shift for the one pass: P' then stays
// within 2^+-64, its sums over fewer than 2^63 keys finite and its largest term a normal float.
inline constexpr float kNsaMaxShiftGap = 64.0f;
// delta[r] = sum_c d_o[r][c] o[r][c] in fp32 (FlashAttention-2's D = rowsum(dO * O)) for `rows`
// bf16 rows of D in {64, 128, 256} elements, contiguous and 16-byte aligned.
cudaError_t NsaRowDots(const void* d_o, const void* o, float* delta, int64_t rows, int64_t dim,
                       cudaStream_t stream);
// dst[i] += src[i] for `count` elements, dst bf16 and src fp32, summed in fp32 and rounded
// once: a branch's fp32 gradient added into another's bf16 one in one pass (for 512 MB of bf16
// on an H200, LibTorch's add_ of mixed dtypes took 0.99 ms, this 0.48 at 92% of DRAM's
// throughput). count a multiple of 8 and both 16-byte aligned, else cudaErrorInvalidValue.
cudaError_t NsaAddInto(void* dst, const float* src, int64_t count, cudaStream_t stream);
// rows[h][t] = folded[h l + (t + 1) mod l][(t + 1) / l - 1] widened to fp32 for t >= l - 1, 0
// for the first l - 1 rows: the compressed branch's dq, folded by nsa_fold.h's rule, as the fp32
// rows the sparse branches then add their dq into. folded: [heads l][T / l][dim] bf16; rows:
// [heads][T][dim] fp32; both contiguous and 16-byte aligned, dim 8 times a power of two up to
// 512, T >= l >= 1 and T dim / 8 < 2^31, else cudaErrorInvalidValue.
cudaError_t NsaUnfoldRowsToFloat(const void* folded, float* rows, int64_t heads, int64_t t,
                                 int64_t l, int64_t dim, cudaStream_t stream);
cudaError_t NsaSelectedBackwardDq(const NsaSelectedParams& p, cudaStream_t stream);
cudaError_t NsaSelectedBackwardDkv(const NsaSelectedParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_SELECTED_H_
