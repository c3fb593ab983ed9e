// NSA's selected and sliding-window branches on our CUDA kernels (trainer_lib/kernels/
// nsa_selected.h: the math, the design, the limits), bound to LibTorch: an autograd function
// NsaAttend uses on CUDA tensors the kernels take, the window's block indices, and the raw
// launches the kernel tests call with poisoned outputs.
// The kernels are compiled in only where nvcc and a LibTorch with CUDA are both there; without
// them NsaSelectedKernelTakes is always false and the other calls fail (TORCH_CHECK).
//
// Layout: the reference's, q [B, H, T, D]; k, v [B, H_kv, T, D]; block indices [B, H_kv, T, n]
// of any integer dtype (NsaBlockIndices' int64 is narrowed to int32), -1 for an empty slot.
// The kernels read bf16: other dtypes are rounded to bf16 first. `window` w > 0 also hides the
// keys s <= t - w from query t (nsa.h's branch 3 on nsa_blocks.h's NsaWindowBlockIndices); 0
// hides none.
//
// Thread-safety: as LibTorch operators; launches go to the current CUDA stream.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_CUDA_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_CUDA_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace ablate::train {

// True when the kernels are compiled in and the environment variable ABLATE_NSA_KERNELS is not
// "0" (the switch that lets a run compare them with the reference).
bool NsaKernelsEnabled();

// x as the kernels read it: bf16, contiguous and 16-byte aligned (they load 8 elements at a
// time); a view that starts mid-row of a larger buffer is copied. Differentiable, any device.
at::Tensor NsaKernelInput(const at::Tensor& x);

// True when NsaKernelsEnabled() and the kernels take these tensors: CUDA, 4-D, D in {64, 128,
// 256}, H / H_kv from 1 to 16, T < 2^31.
bool NsaSelectedKernelTakes(const at::Tensor& q, const at::Tensor& k);

// The selected branch, o_slc (or with a window and NsaWindowBlockIndices, the window branch,
// o_swa, which NsaAttend takes from nsa_window.h's kernels or FlashAttention where either runs
// the shapes):
// [B, H, T, D] bf16, differentiable in q, k and v (their gradients come back in their dtypes;
// dk and dv are summed in fp32 before that). row_shift: as NsaSelectedForwardInto's, no
// gradient. Where block_idx is at most kNsaKeptIndexBytes (as int32), the forward by key block
// keeps its reverse index (4 bytes per (query, slot) at most) for the backward, which would
// build it again: 1.9 ms of a forward and backward at Qwen3-0.6B's 128K on one H200. Past it
// (Qwen3 at more than 512K tokens, where memory is short) the backward rebuilds it.
inline constexpr int64_t kNsaKeptIndexBytes = int64_t{256} << 20;
at::Tensor NsaSelectedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& block_idx, int64_t block_size, int64_t window = 0,
                                const at::Tensor& row_shift = {});

// What the selected branch's forward keeps for its backward, for nodes that run the branch among
// others (nsa_sparse.h) as NsaSelectedAttention's node does alone.
struct NsaSelectedSaved {
  at::Tensor q, k, v;  // as the kernels read them (NsaKernelInput)
  at::Tensor block_idx;  // int32, contiguous
  at::Tensor o, lse;  // the forward's output [B, H, T, D] bf16 and [B, H, T] fp32 (natural log)
  // The forward by key block's reverse index (nsa_reverse_index.h) where kept (above), else
  // undefined and empty: the backward builds it again.
  at::Tensor rev_query, items;
  std::vector<int64_t> pair_items;
  int64_t block_size = 0, window = 0;

  // The tensors, in the order FromTensors takes them (for save_for_backward).
  std::vector<at::Tensor> Tensors() const;
  static NsaSelectedSaved FromTensors(const std::vector<at::Tensor>& tensors,
                                      std::vector<int64_t> pair_items, int64_t block_size,
                                      int64_t window);
};

// A run of (b, h_kv) pairs [pair0, pair1) of the one-pass forward by key block: its rows, pair0
// G T .. pair1 G T of q's layout, as the pass adds into them: accum ([rows, D] fp32), row_sum
// ([rows] fp32) and row_max ([rows] int32; kernels/nsa_selected.h's row_sum and row_max). In
// the backward (NsaSelectedBackwardKept's start) accum alone, the run's dq rows.
struct NsaSelectedRun {
  int64_t pair0 = 0, pair1 = 0;
  at::Tensor accum, row_sum, row_max;
};
// Writes a run's rows before its pass, in place of zeros (and row_max's -inf): the terms of each
// query's last `local_blocks` blocks, t / l - local_blocks < block <= t / l, and of block 0, in
// every slot that holds them, which the pass then leaves out (kernels/nsa_selected.h's
// local_blocks and skip_first_block).
using NsaSelectedRunStart = std::function<void(const NsaSelectedRun&)>;

// The branch's forward (the kAuto paths, row_shift as NsaSelectedForwardInto's): q, k, v of any
// float dtype, block_idx of any integer dtype. `start`, when given with local_blocks > 0, is
// called once per run where the one pass runs (kAuto's by-key-block path with row_shift);
// elsewhere not at all, and every block stays in the branch's own kernels.
NsaSelectedSaved NsaSelectedForwardKept(const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v, const at::Tensor& block_idx,
                                        int64_t block_size, int64_t window,
                                        const at::Tensor& row_shift = {},
                                        const NsaSelectedRunStart* start = nullptr,
                                        int64_t local_blocks = 0);

// Its backward (the kAuto path) for d_o [B, H, T, D] bf16 (contiguous, 16-byte aligned): dq
// [B, H, T, D] bf16 overwritten, or added into when add_dq (kInDkv's fp32 sums added before the
// one rounding; kQueryBlocks' dq, past kNsaMaxPairBytes, added as bf16); dk, dv [B, H_kv, T, D]
// fp32 overwritten. lse: s.lse, or any [B, H, T] fp32
// contiguous in its place (P = exp(S - lse): lse - ln g makes every gradient g times the
// branch's, what a gate g asks of it); delta: rowsum(d_o o) [B, H, T] fp32 contiguous, or
// undefined to have it computed from s.o.
// local_blocks > 0 leaves out each query's local_blocks last blocks (kernels/nsa_selected.h's
// local_blocks), for a caller that adds their terms itself; only where
// NsaSelectedBackwardLeavesLocal(s) (TORCH_CHECK). `start`, when given (only there too), is
// called once per run of (b, h_kv) pairs with its fp32 dq rows (NsaSelectedRun's accum; no
// row_sum or row_max) to write the values they start from in place of zeros: another branch's
// dq, summed with this one's before the one rounding into dq, which is then overwritten
// (add_dq ignored).
void NsaSelectedBackwardKept(const NsaSelectedSaved& s, const at::Tensor& lse,
                             const at::Tensor& d_o, const at::Tensor& delta, at::Tensor& dq,
                             bool add_dq, at::Tensor& dk, at::Tensor& dv,
                             int64_t local_blocks = 0,
                             const NsaSelectedRunStart* start = nullptr);

// Whether that backward forms dq inside its dk/dv kernels (one (b, h_kv) pair's fp32 rows within
// kNsaMaxPairBytes), the path that can leave blocks out.
bool NsaSelectedBackwardLeavesLocal(const NsaSelectedSaved& s);

// dst += src, summed in fp32 and rounded once into dst's dtype: one kernel where dst is bf16 and
// src fp32, both contiguous on one CUDA device (half the time of LibTorch's add_ of mixed dtypes
// on an H200), else add_. Shapes must match (TORCH_CHECK).
void NsaAddInto(const at::Tensor& dst, const at::Tensor& src);

// Where the backward forms dq (trainer_lib/kernels/nsa_selected.h, "Design"):
//   kQueryBlocks  the dq kernel, a second walk over each query's selected blocks;
//   kInDkv        inside the dk/dv kernel, added per (query, block) into an fp32 buffer with
//                 atomics: as many (b, h_kv) pairs' rows at a time as fit kNsaAccumBytes (a
//                 pair is G T D 4 bytes), one pair at least;
//   kAuto         kInDkv where one pair is at most kNsaMaxPairBytes (Qwen3-0.6B to 4M tokens,
//                 4B and 8B to 2M, 32B to 1M, fla's shape to 512K), kQueryBlocks otherwise.
//                 On one H200 kInDkv took the backward from 108.3 to 38.9 ms on Qwen3-0.6B's
//                 shape at 128K and from 78.7 to 63.3 ms on fla's (G = 16) at 64K
//                 (docs/benchmarks.md).
// Both paths sum dk and dv, and kInDkv dq, with fp32 atomics: the last bits vary from run to
// run, as the order of the sums does.
enum class NsaDqPath { kAuto, kQueryBlocks, kInDkv };
inline constexpr int64_t kNsaAccumBytes = int64_t{1} << 30;
// The largest (b, h_kv) pair whose fp32 rows the by-block paths (kInDkv, kByKeyBlock) take on
// their own under kAuto, their buffer then one pair: Qwen3-4B's 2 GiB at 1M tokens, where they
// took the forward from 775 to 358 ms (docs/benchmarks.md), and Qwen3-32B's (G = 8) 4 GiB. Past
// it the query-block paths, which need no buffer, run.
inline constexpr int64_t kNsaMaxPairBytes = int64_t{4} << 30;

// How the forward walks the selected blocks (trainer_lib/kernels/nsa_selected.h, "Design"):
//   kQueryBlocks  a thread block per 16 / G queries over the union of their blocks;
//   kByKeyBlock   by key block over the backward's reverse index, in two passes, adding the
//                 output into fp32 with atomics in runs of pairs as kInDkv does;
//   kAuto         kByKeyBlock without a window (the selected branch) where one pair is at most
//                 kNsaMaxPairBytes, kQueryBlocks otherwise. On one H200 at 128K kByKeyBlock
//                 (one pass, below) took 12.8 ms against 68.8 at G = 2 (Qwen3-0.6B); at G = 16
//                 (fla's shape) 22.7 against 24.4 at 64K and 45.2 against 50.2 at 128K, once its
//                 items went query chunk by query chunk (docs/benchmarks.md); G = 4 took 35.7
//                 against 75.0 before that. The window's blocks are the same for neighbouring
//                 queries: there the query blocks mask nothing.
// kByKeyBlock's o and lse vary from run to run in their last bits (fp32 atomics), and it
// synchronises with the host twice (the reverse index's sizes; three times with a row shift) and
// allocates up to kNsaAccumBytes, or one pair's rows where larger, plus 8 bytes per row of q
// (16 where the one pass below falls back to two).
//
// The row shift makes kByKeyBlock one pass instead of two. Softmax is the same for any shift
// m of a row's scores: o = sum_s exp(S_s - m) v_s / sum_s exp(S_s - m). The statistics pass
// exists to find the row's max for m; a shift known beforehand that lies near the max does as
// well in fp32. The compressed branch's log-sum-exp is such a shift (NsaAttend passes it): with
// mean-pooled blocks a block's compressed score is the mean of its keys' scores, so the row's
// max over its selected keys is at least the best selected block's compressed score, while the
// log-sum-exp is at most ln(NF) above the best block's; the top blocks are selected. A row whose
// max lands more than kNsaMaxShiftGap (64, log2 units; trainer_lib/kernels/nsa_selected.h) from
// its shift, or an output that is not finite, makes the call run the two passes instead: the
// result is exact either way. On one H200 the statistics
// pass took 5.0 ms of the forward's 17.1 at Qwen3-0.6B's 128K (docs/benchmarks.md).
enum class NsaForwardPath { kAuto, kQueryBlocks, kByKeyBlock };

// The raw launches on bf16 contiguous inputs. Forward writes o [B, H, T, D] bf16 and lse
// [B, H, T] fp32 (natural log); row_shift, when defined: [B, H, T] fp32 contiguous, a shift per
// row (natural log, one not finite read as 0) that kByKeyBlock takes in place of its statistics
// pass (above); ignored by kQueryBlocks. Backward reads o, lse and d_o (bf16, o's shape,
// contiguous, 16-byte aligned) and writes dq [B, H, T, D] bf16 and dk, dv [B, H_kv, T, D] fp32
// (overwritten, 16-byte aligned). block_idx: int32; window: as above, 0 for the selected branch.
void NsaSelectedForwardInto(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& block_idx, int64_t block_size, int64_t window,
                            at::Tensor& o, at::Tensor& lse,
                            NsaForwardPath path = NsaForwardPath::kAuto,
                            const at::Tensor& row_shift = {});
void NsaSelectedBackwardInto(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& block_idx, int64_t block_size, int64_t window,
                             const at::Tensor& o, const at::Tensor& lse, const at::Tensor& d_o,
                             at::Tensor& dq, at::Tensor& dk, at::Tensor& dv,
                             NsaDqPath dq_path = NsaDqPath::kAuto);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_CUDA_H_
