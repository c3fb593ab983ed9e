// CUDA kernels for the selected branch of Native Sparse Attention (Yuan et al. 2025, arXiv
// 2502.11089, eqs. 8-12): each query attends to the tokens s <= t of the key blocks chosen for
// it. The math is trainer_lib/attention/nsa.h's branch 2 (fla's naive_nsa_selection):
//
//   S[g][s] = scale q[h][t] . k[h_kv][s]     over s in the chosen blocks, s <= t
//   o[h][t] = softmax_s(S[g]) v[h_kv]        lse[h][t] = log sum_s exp(S[g][s])
//
// with h = h_kv * G + g, G = H / H_kv, and every slot of block_idx holding a block number or -1
// (empty). Backward (FlashAttention-2's, Dao 2023, with delta = rowsum(do * o)):
//   P = exp(S - lse),  dP = do v^T,  dS = P * (dP - delta),
//   dq = scale dS k,   dk = scale sum dS^T q,   dv = sum P^T do
// where the sums run over every (query, head) that selected the key.
//
// Design (SIMT, fp32 accumulation, no tensor cores):
//  - Forward and dq: one thread block per (b, h_kv, t); it loads each selected key/value tile
//    of 32 tokens once into shared memory and serves all G query heads of the group from it
//    (the paper's group-centric loading). A warp owns a set of heads; a lane owns a key for the
//    scores and a pair of head-dim columns for the weighted sum. Online softmax in base 2.
//  - dk/dv: the reverse index. The caller groups the (query, slot) pairs by selected block
//    (a CSR list per (b, h_kv, block)) and cuts each list into work items of at most
//    kNsaQueriesPerItem queries. A thread block per (item, 32-token tile of the block) loads
//    its key/value tile once, loops over its queries (all G heads each) accumulating dk and dv
//    in registers, then adds them into fp32 dk, dv with atomicAdd: a block chosen by many
//    queries (the first block is chosen by every query) is split over many items, and a
//    duplicate (query, block) pair is simply summed twice, as the reference's gather would.
//
// Shapes (all contiguous, 64-bit offsets everywhere):
//   q, o, do, dq: [B, H, T, D] bf16;  k, v: [B, H_kv, T, D] bf16;  lse, delta: [B, H, T] fp32
//   block_idx: [B, H_kv, T, n] int32;  dk, dv: [B, H_kv, T, D] fp32, accumulated into (the
//   caller zeroes them).  D in {64, 128, 256}; 1 <= G <= 16; any block size >= 1; T < 2^31.
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_SELECTED_H_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_SELECTED_H_

#include <cstdint>

#include <cuda_runtime_api.h>

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
  // The reverse index for dk/dv: rev_query[e] is the query position of entry e, entries grouped
  // by list (b * H_kv + h_kv) * NB + block, NB = ceil(T / block_size); items [num_items, 3]
  // int64 rows (list, first entry, end entry), each at most kNsaQueriesPerItem entries.
  const int32_t* rev_query = nullptr;
  const int64_t* items = nullptr;
  int64_t num_items = 0;
};

// True when the kernels take these sizes (D, G, positive sizes, T < 2^31).
bool NsaSelectedSupported(const NsaSelectedParams& p);

// Launch on `stream`; return the launch's error (cudaSuccess when it started).
cudaError_t NsaSelectedForward(const NsaSelectedParams& p, cudaStream_t stream);
cudaError_t NsaSelectedBackwardDq(const NsaSelectedParams& p, cudaStream_t stream);
cudaError_t NsaSelectedBackwardDkv(const NsaSelectedParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_SELECTED_H_
