// NSA's sliding-window branch (Yuan et al., 2025, section 3.3.3: o_swa):
//   o_swa[b, h, t] = softmax_s(q_t . k_s / sqrt(D)) v_s   over keys t - w < s <= t,
// that is FlashAttention's causal window of window_size_left = w - 1 keys before t and none after.
// Key/value head h / G serves query head h (GQA), as in the other branches. Two implementations:
//  - our kernels on Hopper's wgmma (trainer_lib/kernels/nsa_window.h) at head dim 128, where the
//    build holds sm_90a code and the device runs it: dk and dv summed over the group in
//    registers, dq without atomics, nothing allocated past o, lse, delta and the gradients, the
//    same bits on every run. On one H200 the branch's forward and backward took 18.6 ms on them
//    against 24.4 on FlashAttention at fla's shape (64 / 4 heads) and 64K, 37.5 against 48.4 at
//    128K and 9.5 against 12.0 at Qwen3-0.6B's 128K, in the same calls (docs/benchmarks.md, "The
//    window branch on wgmma" and "The softmaxes' exponentials on one instruction");
//  - PyTorch's own FlashAttention-2 kernel (Dao, 2023) everywhere else it runs.
//
// Why not our selected-branch kernels over the window's blocks (nsa_cuda.h, which still take
// the window where neither does): a window is a band, the case FlashAttention's tiles of 128
// queries are built for, where those kernels gather blocks for at most 16 query rows at a time.
// When the branch moved to FlashAttention its forward and backward took 15.5 ms there against
// 31.3 ms on those kernels at Qwen3-0.6B's shape and 128K tokens, and 25.4 against 53.9 ms on
// fla's shape at 64K (docs/benchmarks.md, "The window branch on FlashAttention").
//
// FlashAttention's memory: the forward keeps o and the log-sum-exp (B H T fp32), nothing of [T, w]
// size. What FlashAttention's backward allocates (its fp32 dq accumulator, its per-query-head dk
// and dv under GQA, copies of do and o) is 14 H D + 4 H_kv D bytes a query row. Where that is at
// most 5 GiB for all T queries (Qwen3-0.6B to 160K tokens), one call runs them. Past that, the
// backward runs over chunks of queries, each with the keys its window reaches (t0 - w + 1 ..
// t1 - 1, FlashAttention aligning the chunk's queries to its keys' end), so that it stays within
// kNsaAccumBytes (nsa_cuda.h) whatever T is: 32,576 rows a chunk on Qwen3-0.6B with w = 512.
// Chunks are exact: a query's window lies wholly in its chunk's keys; the w - 1 keys two chunks
// share get their dk and dv summed in fp32 buffers (B H_kv T D each, as the kernels' node
// holds). At 128K on one H200 the chunks' sums and copies were 2.3 ms of the branch's 9.6.
//
// Thread-safety: as LibTorch operators; launches go to the current CUDA stream.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_WINDOW_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_WINDOW_H_

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ablate::train {

// Which implementation runs the branch: kAuto our kernels where NsaWindowKernelsTake, else
// FlashAttention; kFlash and kKernels the one named (TORCH_CHECK that it takes the tensors).
enum class NsaWindowPath { kAuto, kFlash, kKernels };

// True when our kernels run these tensors: NsaKernelsEnabled() (nsa_cuda.h), q [B, H, T, D] and
// k [B, H_kv, T, D] on one CUDA device, D = 128, H a multiple of H_kv, B and H at most 65535,
// T < 2^31, and the build's sm_90a code running on the device.
bool NsaWindowKernelsTake(const at::Tensor& q, const at::Tensor& k);

// True when FlashAttention runs these tensors: q [B, H, T, D] and k [B, H_kv, T, D] on one
// CUDA device, H a multiple of H_kv, D a multiple of 8 up to 256 (FlashAttention-2's head dims),
// PyTorch's flash backend not disabled (at::globalContext().userEnabledFlashSDP()), and this
// build's FlashAttention running on the device (probed once per process with a one-row call).
bool NsaWindowFlashTakes(const at::Tensor& q, const at::Tensor& k);

// Either of the two: NsaWindowAttention runs these tensors.
bool NsaWindowTakes(const at::Tensor& q, const at::Tensor& k);

// The raw launches of our kernels, for nodes that run the branch among others (nsa_sparse.h)
// as NsaWindowAttention's node does alone; only where NsaWindowKernelsTake (TORCH_CHECK on the
// layouts). q, o, d_o, dq [B, H, T, D] and k, v, dk, dv [B, H_kv, T, D] contiguous bf16; lse and
// delta [B, H, T] contiguous fp32. The forward writes o and lse (natural log); the backward reads
// lse (the forward's, or any row-wise shift of it: lse - ln g makes every gradient g times the
// branch's) and delta = rowsum(d_o o), and overwrites dq, dk and dv; dq may be fp32 instead,
// then added into (with atomics, by the dk/dv kernel: dk and dv must be asked for too; the rows
// the selected branch's dk/dv kernel also adds its dq into), and either dq or dk with dv may be
// undefined, not formed then (a launch each). `local`, when given, adds
// the selected branch's terms for each query's own block of 64 tokens and the one before it into
// the same gradients (kernels/nsa_window.h's local_*; window >= 128). The forward's `start`,
// when given, also writes the rows that the selected branch's one-pass forward by key block
// starts from for those two blocks and block 0 (kernels/nsa_window.h's local_accum, local_sum
// and local_max; nsa_cuda.h's NsaSelectedRunStart).
struct NsaWindowLocalTerms {
  at::Tensor block_idx;   // the selection [B, H_kv, T, n] int32, blocks of 64 tokens
  at::Tensor lse, delta;  // its log-sum-exp (as its backward takes it) and delta, [B, H, T] fp32
};
struct NsaWindowLocalStart {
  at::Tensor block_idx;  // the selection [B, H_kv, T, n] int32, blocks of 64 tokens
  at::Tensor shift;      // the rows' shifts, [B, H, T] fp32, natural log
  at::Tensor accum;      // written: [B H T, D] fp32
  at::Tensor row_sum;    // written: [B H T] fp32
  at::Tensor row_max;    // written: [B H T] int32
};
void NsaWindowKernelForwardInto(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                int64_t window, at::Tensor& o, at::Tensor& lse,
                                const NsaWindowLocalStart* start = nullptr);
void NsaWindowKernelBackwardInto(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 int64_t window, const at::Tensor& lse, const at::Tensor& d_o,
                                 const at::Tensor& delta, at::Tensor& dq, at::Tensor& dk,
                                 at::Tensor& dv, const NsaWindowLocalTerms* local = nullptr);

// The window branch o_swa: q [B, H, T, D]; k, v [B, H_kv, T, D], any float dtype (rounded to
// bf16 first, as the kernels do); window w > 0 (TORCH_CHECK). Returns [B, H, T, D] bf16,
// contiguous, differentiable in q, k and v (their gradients come back in their dtypes).
// backward_rows: FlashAttention's queries per backward chunk; 0 sizes chunks by memory as above
// (tests pass small values to cut chunks inside the window).
at::Tensor NsaWindowAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              int64_t window, int64_t backward_rows = 0,
                              NsaWindowPath path = NsaWindowPath::kAuto);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_WINDOW_H_
