// NSA's output: the three branches weighted by their per-head gates (Yuan et al., 2025, eq. 5),
//   o[b, h, t] = sum_c g[b, h, t, c] o_c[b, h, t]       c = compressed, selected, window
// summed in fp32 whatever the branches' dtypes, as one autograd node.
//
// Why a node of its own: written as eager products, autograd keeps an fp32 copy of every branch
// (each product saves its operands, and the branches reach it cast to fp32), three [B, H, T, D]
// fp32 tensors per layer, 24 KiB a token on Qwen3-0.6B. This node keeps the branches as they
// came, which on the kernels' path are the bf16 outputs their own nodes keep anyway, and the
// gates: nothing of [B, H, T, D] size of its own. Backward:
//   d o_c = g_c do,   d g_c = sum_d do o_c
// in fp32, each returned in its input's dtype; a gate without a branch gets a zero gradient.
// On CUDA with bf16 branches both passes run on kernels (trainer_lib/kernels/nsa_gate.h, where
// NsaGateKernelTakes says), which read and write each tensor once. Elsewhere they run eagerly, a
// chunk of positions at a time, so that their fp32 temporaries stay near 2^27 elements (whole,
// several [B, H, T, D] fp32 tensors: 8 GiB each at 1M tokens on Qwen3-0.6B).
//
// Thread-safety: as LibTorch operators.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_GATE_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_GATE_H_

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace ablate::train {

// True when NsaGateCombine runs these inputs on the CUDA kernels (trainer_lib/kernels/nsa_gate.h):
// the kernels compiled in and enabled (nsa_cuda.h's NsaKernelsEnabled), CUDA tensors on one
// device, 1 to 3 bf16 branches of one shape, contiguous and 4-byte aligned, D even, C <= 32,
// `dtype` bf16, gates bf16 or fp32 in any layout (the kernels read a contiguous copy), at least
// one position. Elsewhere the node's eager chunks run, with the same results up to rounding.
bool NsaGateKernelTakes(const at::Tensor& gates, at::TensorList branches, at::ScalarType dtype);

// Branch 0 as the compressed branch's fused attention returns it: folded (nsa_fold.h) in runs of
// whole heads, run j [B, heads_j l, T / l, D] contiguous bf16, every run but the last of the
// same heads, at most kNsaGateMaxFoldedRuns runs. Row t of head h is then read in place: o_cmp
// needs no unfolding and its gradient no folding (a copy of [B, H, T, D] each).
struct NsaFoldedBranch {
  std::vector<at::Tensor> runs;
  int64_t l = 0;
};
// The most runs the kernels read in place (trainer_lib/kernels/nsa_gate.h's kNsaGateMaxRuns):
// Qwen3's shapes take at most 8 (a run per key/value head at 1M tokens).
inline constexpr size_t kNsaGateMaxFoldedRuns = 16;

// The kernels' passes as NsaGateCombine's node runs them, for nodes that hold the gated sum
// among other work (nsa_sparse.h); only where NsaGateKernelTakes(gates, branches, bf16)
// (TORCH_CHECK). out, d_out: [B, H, T, D] bf16, contiguous, 4-byte aligned; d_branches: one per
// branch, each such a tensor (written g_c do) or undefined (not written: the branch takes do and
// g_c itself); d_gates: [B, H, T, C] fp32 contiguous, d_gates[..., c] = rowsum(do o_c) for each
// branch and 0 past them. With `folded`, branch 0 is its runs and `branches` (and d_branches) are
// branches 1, 2, ...; d_folded, when not empty, gets branch 0's gradient in the runs' layout (its
// slots past T are not written), else it is not written.
void NsaGateForwardInto(const at::Tensor& gates, at::TensorList branches, at::Tensor& out,
                        const NsaFoldedBranch* folded = nullptr);
void NsaGateBackwardInto(const at::Tensor& gates, at::TensorList branches,
                         const at::Tensor& d_out, at::TensorList d_branches, at::Tensor& d_gates,
                         const NsaFoldedBranch* folded = nullptr, at::TensorList d_folded = {});

// gates: [B, H, T, C] any float dtype; branches: 1 to C tensors [B, H, T, D] of any float
// dtypes, branch c weighted by gates[..., c]. Returns [B, H, T, D] in `dtype`. Shapes are
// checked (TORCH_CHECK). chunk_elements: the fp32 elements of one chunk's temporaries (B H D
// per position; at least one position a chunk).
at::Tensor NsaGateCombine(const at::Tensor& gates, const std::vector<at::Tensor>& branches,
                          at::ScalarType dtype, int64_t chunk_elements = int64_t{1} << 27);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_GATE_H_
