// CUDA kernels for the sliding-window branch of Native Sparse Attention (Yuan et al. 2025, arXiv
// 2502.11089, section 3.3.3: o_swa), on Hopper's warpgroup MMAs (wgmma_bf16.cuh), head dim 128:
//
//   S[h][t][s] = scale q[h][t] . k[h_kv][s]       over keys t - w < s <= t (w = window >= 1)
//   o[h][t]    = softmax_s(S) v[h_kv]             lse[h][t] = log sum_s exp(S[h][t][s])
//
// with h = h_kv G + g, G = H / H_kv any integer (Qwen3's 2, 4, 5 and 8 as well as fla's 16), and
// the backward of FlashAttention-2 (Dao 2023): P = exp(S - lse), dP = do v^T, dS = P (dP - delta)
// with delta = rowsum(do o) (NsaRowDots, nsa_selected.h), dq = scale dS k, dk = scale sum dS^T q,
// dv = sum P^T do, the sums over the G heads of the group and the queries whose window holds the
// key. P and dS are rounded to bf16 before their products, as FlashAttention-2 does.
//
// Design. A band, unlike the selected branch's blocks: a query tile of 64 rows sees the key tiles
// from its own back to the one holding its first query's first key (at most ceil((w - 1) / 64) + 1
// of them), contiguous, so nothing is gathered and no sum needs atomics.
//  - Forward: a thread block (one warpgroup) per (b, 64 queries, one or two heads of a group) walks
//    its key tiles up to the diagonal, K and V double-buffered in 128-byte-swizzled shared tiles,
//    each step's loaded by the tensor memory accelerator (tma.cuh: one thread issues them, where
//    cp.async took every thread's issue slots; 2.76 to 2.26 ms a launch at fla's 64K on an H200):
//    S = Q K^T (m64n64k16, both operands in shared memory), an online softmax in base 2 in
//    registers, O += P V (m64n128k16, P as register A).
//  - dq: the same tiles from the diagonal back, S = Q K^T and dP = dO V^T, P = exp(S - lse), dS,
//    dq += dS K (register A); dq is written once, in bf16. Or, where the caller gives fp32 rows
//    (dq_accum), the dk/dv kernel below adds each step's dS K into them with atomics, as
//    FlashAttention-2 does, and S and dP are formed once where the walk forms them twice.
//  - dk, dv: a thread block per (b, h_kv, 128 keys), two warpgroups of 64 keys each, keeps its K
//    and V tiles and walks the G heads' query tiles whose windows reach them, head by head, q and
//    do in three buffers (loaded as the forward's K and V are, for both warpgroups): S^T = K Q^T,
//    dP^T = V dO^T, dv += P^T dO and dk += dS^T Q (register A); the group's sum stays in
//    registers. With dq_accum the warpgroups exchange dS through shared memory and each adds
//    dS K for half of dq's columns over all 128 keys (FlashAttention-3's split): half the q and
//    do loads and half the atomics a key of a block of 64 keys (5.73 to 5.16 ms a launch at
//    fla's 64K on an H100). Within a head the blocks of neighbouring key tiles read each query
//    tile at about the same step, so that L2 serves most of those reads.
//  - Within a warpgroup the chains overlap where they can: the forward's two heads (G even) share
//    each K and V tile, head 1's S = Q K^T running while head 0's softmax does; dq and dk/dv
//    commit S and dP as two groups, forming P while dP's products run (and dk/dv's dS^T while
//    dv's). On one H200 at fla's shape and 64K these took the branch from 28.2 to 20.4 ms
//    (docs/benchmarks.md, "The window branch on wgmma").
// FlashAttention-2's backward (PyTorch's, the fallback in trainer_lib/attention/nsa_window.h)
// adds dq with fp32 atomics and, under GQA, writes dk and dv per query head before summing them
// over the group. dq's own walk computes S and dP a second time, but needs no fp32 buffer and
// gives the same bits on every run; the selected branch, whose dq is summed with atomics in fp32
// rows anyway, takes the dk/dv kernel's atomics (dq_accum), 7 products a step down to 5.
//
// Layout: q, o, do, dq [B, H, T, D]; k, v, dk, dv [B, H_kv, T, D]; lse, delta [B, H, T] fp32;
// all contiguous, bf16 where not said, and 16-byte aligned (the tiles are copied 16 bytes at a
// time, and the tensor memory accelerator asks it). Requires T < 2^31, w >= 1, B and H at most
// 65535; indices of elements are 64-bit, so T may reach 1M tokens and beyond.
//
// Availability: the kernels are compiled where the build targets sm_90a (ABLATE_SM90A_KERNELS)
// and run on a device of compute capability 9.0; NsaWindowKernelsRun says so. Elsewhere the
// launchers return cudaErrorNotSupported.
#ifndef ABLATE_TRAINER_LIB_KERNELS_NSA_WINDOW_H_
#define ABLATE_TRAINER_LIB_KERNELS_NSA_WINDOW_H_

#include <cuda_runtime.h>

#include <cstdint>

namespace ablate::kernels {

struct NsaWindowParams {
  const void* q = nullptr;  // bf16 [B, H, T, D]
  const void* k = nullptr;  // bf16 [B, H_kv, T, D]
  const void* v = nullptr;
  void* o = nullptr;             // forward: bf16 [B, H, T, D]
  float* lse = nullptr;          // forward writes, backward reads: [B, H, T], natural log
  const void* d_o = nullptr;     // backward: bf16 [B, H, T, D]
  const float* delta = nullptr;  // backward: rowsum(do o), [B, H, T]
  // Backward: bf16 [B, H, T, D], written by dq's own walk; or, dq_accum set instead (with dk and
  // dv), fp32 rows ([B H T, D]) that the dk/dv kernel adds scale dS K into with atomics (the
  // caller zeroes them, or holds what dq adds to: nsa_selected.h's accum). Each of dq and dk with
  // dv is formed only where set.
  void* dq = nullptr;
  float* dq_accum = nullptr;
  void* dk = nullptr;  // backward: bf16 [B, H_kv, T, D]
  void* dv = nullptr;
  // Backward, optional (local_idx null: none): the selected branch's terms for each query's own
  // key block and the one before it, taken here because the window's products already hold
  // their scores (nsa_selected.h's local_blocks = 2 leaves them out of its dk/dv kernels). For
  // key s of those blocks (t - 128 < s <= t), with c the query's slots that hold the key's block,
  // P_sel = c 2^(scale log2(e) S - lse_sel log2(e)) joins P in dv and P_sel (dP - delta_sel)
  // joins dS. Needs blocks of 64 tokens (the tiles) and w >= 128 (no key of those blocks outside
  // the window).
  const int32_t* local_idx = nullptr;  // the selection [B, H_kv, T, local_slots], -1 empty
  int64_t local_slots = 0;
  const float* local_lse = nullptr;    // lse_sel [B, H, T], natural log
  const float* local_delta = nullptr;  // delta_sel [B, H, T]
  // Forward, optional (local_idx and these set): the same two blocks' terms of the selected
  // branch's one-pass forward by key block (nsa_selected.h's row_shift), and block 0's (fla's
  // rule forces it into every selection) for queries t >= 128, written as the values its rows
  // start from, for a pass that then leaves those blocks out (local_blocks = 2 and
  // skip_first_block). Per row of q's layout, with c the query's slots that hold key s's block
  // and P'[s] = c 2^(scale log2(e) S - log2(e) local_shift) over the keys s <= t of the blocks:
  //   local_accum[row] = sum_s P'[s] v[s]       fp32 [B H T, D]
  //   local_sum[row]   = sum_s P'[s]            fp32 [B H T]
  //   local_max[row]   = max scale log2(e) S over those keys with c > 0, nsa_selected.h's
  //                      row_max order (-inf, 0x807fffff, where there is none)
  // The walk takes the query tile's own key tile and the one before it last, so that both are
  // still in shared memory: their scores are formed again, and key tile 0 copied in after them.
  const float* local_shift = nullptr;  // [B, H, T], natural log; one not finite is taken as 0
  float* local_accum = nullptr;
  float* local_sum = nullptr;
  int32_t* local_max = nullptr;
  int64_t batch = 0, heads = 0, kv_heads = 0, seq_len = 0, head_dim = 0, window = 0;
  float scale = 0.0f;  // usually 1 / sqrt(D)
};

// Whether this build holds the kernels and the current device runs them (asked once per
// process: the GPUs of one host are of one kind).
bool NsaWindowKernelsRun();

// Whether the kernels take p's shapes: D = 128, H a multiple of H_kv, T in [1, 2^31), w >= 1
// (w >= 128 with local_idx), B, H and H_kv in [1, 65535]; dq_accum only with dk and without dq.
bool NsaWindowSupported(const NsaWindowParams& p);

// o and lse from q, k, v. cudaErrorInvalidValue where !NsaWindowSupported(p),
// cudaErrorNotSupported where !NsaWindowKernelsRun().
cudaError_t NsaWindowForward(const NsaWindowParams& p, cudaStream_t stream);

// dq (into dq, or added into dq_accum), dk and dv from q, k, v, do, lse and delta, one launch for
// dq (dq set) and one for dk with dv, each only where its outputs are set; every element of dq,
// dk and dv is written.
// Errors as NsaWindowForward's.
cudaError_t NsaWindowBackward(const NsaWindowParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_NSA_WINDOW_H_
