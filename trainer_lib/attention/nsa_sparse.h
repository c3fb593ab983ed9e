// NSA's selected and window branches and the gated sum of all three branches as one autograd
// node on our kernels (Yuan et al., 2025, eq. 5 with branches 2 and 3 of section 3.3):
//   o = g_cmp o_cmp + g_slc o_slc + g_swa o_swa
// o_cmp comes in computed, as the fused attention returns it: runs of folded heads (nsa_fold.h,
// nsa_gate.h's NsaFoldedBranch), read in place and given their gradient in place; o_slc and
// o_swa are computed here. Where o_cmp comes on a graph of its own (nsa_compressed.h's
// NsaFoldedCompressed), this node runs that graph's backward inside its own, and the compressed
// branch's dq, unfolded in one pass into the fp32 rows below (in place of their zeros), is summed
// with the sparse branches' and rounded once.
//
// Why one node: a branch's gradient under its gate is d o_c = g_c do, and its backward
// (FlashAttention-2's: P = exp(S - lse), dP = d o_c v^T, delta = rowsum(d o_c o_c),
// dS = P (dP - delta), dv = P^T d o_c) reads that [B, H, T, D] tensor. As separate nodes, the
// gate's backward writes each d o_c, and each branch reads it back and reads o_c again for
// delta. But g is one number per row:
//   dS = P (g do v^T - g rowsum(do o_c)) = (g P) (do v^T - D_c),   dv = (g P)^T do,
// with D_c = rowsum(do o_c), which is also the gate's gradient d g_c, and g P = exp(S - (lse -
// ln g)). So here the gate's backward writes only d o_cmp (the compressed branch is PyTorch's
// attention, which reads it) and d g; the selected and window kernels take the raw do,
// lse - ln g and d g's column as delta: the same math with no [B, H, T, D] tensor between them.
// The window's dq and the selected branch's are summed in fp32 and rounded once, where autograd
// would add the two as bf16 tensors: with the local terms below, the window's dq kernel runs
// per run of (b, h_kv) pairs and writes its fp32 dq as the rows the selected branch's dk/dv
// kernel adds its own into (in place of zeros); elsewhere the window's bf16 dq, written first,
// takes the selected branch's fp32 sums. A gate of 0 gives
// lse - ln g = +inf, so P = 0 and no gradient, as it should; a negative gate has no ln g (NaN),
// so callers send gates below 0 elsewhere (NsaAttend does).
// Each query's own block and the one before it (fla's rule forces both into every selection)
// lie inside a window of at least 128 tokens, where the window's backward already holds their
// scores and dP = do v^T: with blocks of 64 tokens, its kernels add the selected branch's
// terms there (one more exp per score of those two key tiles, counted by the slots that hold
// each block), and the selected branch's dk/dv kernel skips those entries (on one H200 at fla's
// shape and 64K, its two launches 13.5 to 12.3 ms each, the window's two kernels 0.3 ms slower
// each; docs/benchmarks.md). Where the selected forward runs in one pass against the row
// shifts (its forward by key block), the window's forward runs with it, one launch per run of
// (b, h_kv) pairs, and writes those two blocks' terms and block 0's (forced into every selection
// too) as the values the pass's rows start from: the pass leaves them out, and its zero fills
// are gone.
//
// Thread-safety: as LibTorch operators; launches go to the current CUDA stream.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_SPARSE_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_SPARSE_H_

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "trainer_lib/attention/nsa_compressed.h"

namespace ablate::train {

// True when NsaGatedBranches runs these tensors: the selected kernels take q and k
// (nsa_cuda.h), the window's kernels take them where window > 0 (nsa_window.h), q is bf16 and
// contiguous, and the gate's kernels take the gates with branches of q's shape (nsa_gate.h).
bool NsaGatedBranchesTake(const at::Tensor& q, const at::Tensor& k, const at::Tensor& gates,
                          int64_t window);

// q [B, H, T, D], k, v [B, H_kv, T, D]; gates [B, H, T, C >= 3] (columns: compressed,
// selected, window), none below 0 (not checked: that would take a look from the host); o_cmp:
// the compressed branch's runs of folded heads by block_size l (NsaCompressedAndSelect's
// `folded`; its q_runs, where given, folded from this q); block_idx [B, H_kv, T, n] the
// selection; row_shift as NsaSelectedAttention's (undefined: none); window 0 for none (then
// g_swa's gradient is 0). Returns o [B, H, T, D] bf16, differentiable in q, k, v, gates and each
// run, or where o_cmp has a graph of its own, each of its inputs (gradients in their dtypes; a
// run's slots past T get 0). Runs the graph's backward once: a second backward through the
// node fails as autograd's does. TORCH_CHECK where NsaGatedBranchesTake is false or the runs do
// not fit.
at::Tensor NsaGatedBranches(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& gates, const NsaFoldedCompressed& o_cmp,
                            const at::Tensor& block_idx, const at::Tensor& row_shift,
                            int64_t block_size, int64_t window);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_SPARSE_H_
