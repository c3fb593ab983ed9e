// NSA's compressed branch and block selection in bf16 on tensor cores, in plain LibTorch: the
// fast path NsaAttend takes on CUDA (nsa.h's branches 1 and 2's selection; the chunked fp32
// reference there stays the CPU path and the tests' oracle).
//
// Per chunk of queries [t0, t0 + Tc) and key/value head, with G = H / H_kv query heads stacked as
// rows and NFc = (t0 + Tc) / l the compressed blocks any query of the chunk can see:
//   S = scale q k_cmp^T               bf16 GEMM, fp32 accumulate and result  [G Tc, NFc]
//   S[t][c] = -inf where (c + 1) l - 1 > t (the block has not ended)
//   P = softmax(S) (fp32), 0 for a row that sees no block
//   score[t][c] = mean over the G heads of P  ->  fla's top-n with the forced first, own and
//                 previous blocks (NsaTopBlocks, the reference's own rule)
//   o_cmp = bf16(P) v_cmp             bf16 GEMM, fp32 result; 0 for a row that sees no block
// so the forward scores each chunk once for both the output and the selection. Backward
// (softmax's, with delta = rowsum(do * o) as FlashAttention-2, Dao 2023) recomputes S and P per
// chunk:
//   dP = do v_cmp^T,  dS = P (dP - delta),  dq = scale dS k_cmp,  dk_cmp = scale dS^T q,
//   dv_cmp = P^T do
// with bf16 GEMM inputs and fp32 results and sums; k_cmp, v_cmp are pooled (NsaMeanPool) in
// fp32 under autograd, so their gradients reach k and v through the pooling. Blocks past NFc are
// never multiplied: the causal half of the work is skipped chunk by chunk.
//
// On CUDA, o_cmp itself comes from PyTorch's fused causal attention instead (cuDNN or flash,
// forward and backward, nothing of [T, NF] size in memory): the l queries whose visible blocks
// are the same (t = (p + 1) l - 1 + i, i < l, all see c <= p) are folded into l heads, so that
// SDPA's causal lower triangle over the NF compressed keys is exactly the rule above. The
// selection is then made without autograd, by the first of these that runs the shapes
// (nsa_selection.h):
//   - the fused selection kernel (trainer_lib/kernels/nsa_selection.h), which scores on tensor
//     cores and ranks in registers and shared memory: S never reaches memory. Each row's softmax
//     statistics are the fused attention's log-sum-exp, which the backend's op returns beside
//     o_cmp (cuDNN, flash and the efficient kernel): the kernel then scores once, not twice;
//   - per chunk, a GEMM of raw scores S and the top-blocks kernel (nsa_top_blocks.h), which
//     takes the softmax, the group mean and the top n in two reads of S;
//   - the LibTorch chain above, which reads and writes each chunk about ten times.
// Where SDPA would fall back to its unfused math kernel, the chunked path computes o_cmp too.
//
// Numerics: outputs and gradients carry bf16 rounding of q, k_cmp, v_cmp, P, do and dS, about
// PyTorch's own bf16 error (the tests hold them within twice it). The selection reads fp32
// scores of bf16 inputs (on the fused kernel normalized by the backend's log-sum-exp, about 1e-6
// from exact on cuDNN): it can differ from the fp32 reference's in near-ties only.
//
// Memory: on the chunked paths a chunk holds about three [B, H, Tc, NFc] fp32 tensors (the GEMM
// and top-blocks path, one); Tc is chosen so that one stays near 2^28 elements unless
// NsaOptions::query_chunk sets it. The fused selection kernel holds no scores. Kept for backward: q
// in bf16, the pooled k and v in bf16 and the output (on CUDA, SDPA's own: the folded q, the pooled
// k and v, its bf16 output and its log-sum-exp).
//
// Thread-safety: as LibTorch operators.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_COMPRESSED_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_COMPRESSED_H_

#include <ATen/core/Tensor.h>

#include <vector>

#include "trainer_lib/attention/nsa.h"

namespace ablate::train {

// The compressed branch's output as runs of whole heads folded as nsa_fold.h does, run j
// [B, heads_j l, T / l, D] bf16, for a consumer that reads them in place (NsaGatedBranches,
// nsa_sparse.h). Either the runs are differentiable in the caller's graph (`leaves` empty), or
// they were computed under autograd from a graph of their own, whose backward the consumer runs
// inside its own:
//   leaves  tensors without history that require grad, one per `inputs` tensor: the pooled keys
//           and values in bf16; the consumer gives each input its leaf's gradient (in the
//           input's dtype), so the caller's graph continues from the inputs;
//   q_runs  q's folded runs, leaves too: the consumer sums their gradient into dq itself, in fp32
//           with its other branches' and rounded once, where autograd would unfold the bf16 dq of
//           this branch into a [B, H, T, D] tensor and add it to theirs (about 1.3 ms of copies
//           and sums at fla's shape and 64K on an H200, docs/benchmarks.md).
struct NsaFoldedCompressed {
  std::vector<at::Tensor> runs;
  std::vector<at::Tensor> leaves, inputs, q_runs;
};

struct NsaCompressedOutput {
  // o_cmp: [B, H, T, D], differentiable in q, k and v; fp32 from the chunks, bf16 (SDPA's
  // output, exactly) from the fused path.
  at::Tensor out;
  at::Tensor block_idx;  // [B, H_kv, T, n] int32, kept blocks then -1; no gradient
  // [B, H, T] fp32, no gradient: the fused path's log-sum-exp of the compressed scores (natural
  // log, -inf for the first l - 1 queries, which see no block), the selected branch's row shift
  // (nsa_cuda.h); undefined on the chunked path and where SDPA's backend gives none.
  at::Tensor lse;
  // With folded_out on the fused path, o_cmp as the fused attention returns it instead of `out`
  // (then undefined), bf16: saves unfolding o_cmp for a consumer that reads the runs in place.
  NsaFoldedCompressed folded;
};

// q: [B, H, T, D]; k, v: [B, H_kv, T, D] with H a multiple of H_kv, any float dtype (rounded to
// bf16 for the GEMMs), on any device (CUDA uses cuBLAS's bf16 GEMM with an fp32 result; the CPU
// multiplies the same bf16 values in fp32). options: block_size, selected_blocks, query_chunk.
// Shapes are checked (TORCH_CHECK). `selection`, when defined: [B, H_kv, T, n] int32 blocks
// the fused path returns as block_idx instead of scoring the chunks (the chunked path, which
// scores as it computes o_cmp, ignores it). folded_out: return the fused path's o_cmp as
// `folded` (above), from a graph of its own where grad mode is on and there are at most
// kNsaGateMaxFoldedRuns runs (nsa_gate.h: then NsaGatedBranches takes them), else
// differentiable in q, k and v; the chunked path returns `out` whatever it is.
NsaCompressedOutput NsaCompressedAndSelect(const at::Tensor& q, const at::Tensor& k,
                                           const at::Tensor& v, const NsaOptions& options,
                                           const at::Tensor& selection = at::Tensor(),
                                           bool folded_out = false);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_COMPRESSED_H_
