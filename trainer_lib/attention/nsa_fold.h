// The compressed branch's queries folded into heads, and rows folded back: the layout in which
// NSA's compressed attention is one plain causal attention (nsa_compressed.h, "On CUDA").
// Query t sees the compressed blocks c <= p with p = (t + 1) / l - 1, so the l queries
// t = (p + 1) l - 1 + i (i < l) become row p of folded head h l + i:
//
//   folded[b][h l + i][p] = x[b][h][(p + 1) l - 1 + i]      for (p + 1) l - 1 + i < T, else 0
//
// with NF = T / l rows per folded head (T - l + 1 <= NF l < T + 1, so only the last row has
// slots past T). The first l - 1 queries see no block and have no row.
//
// Why a module: written as pad, reshape and permute, LibTorch copies the rows twice each way
// and again in the backward; here each direction is one strided copy, and each gradient one
// copy back (at Qwen3-0.6B's shape and 128K tokens q is 512 MB).
//
// Both functions are differentiable (autograd), on any device and dtype; x's dim 2 may have
// any stride, and the results are contiguous.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_FOLD_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_FOLD_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace ablate::train {

// x [B, H, T, X] -> runs of whole heads: run i is [B, run_heads[i] l, T / l, X], the folded
// heads of x's next run_heads[i] heads; slots past T are 0. Attention called run by run then
// reads each as it is: slices of one folded tensor would each get a gradient of the whole
// tensor's size from autograd (zeros but for the slice), all of them added up. Needs l >= 1,
// T >= l and run_heads positive, summing to H.
std::vector<at::Tensor> NsaFoldRows(const at::Tensor& x, int64_t l,
                                    const std::vector<int64_t>& run_heads);

// The inverse: folded [B, heads l, NF, X], given as runs of whole heads (pieces[i] holds the
// next pieces[i].size(1) / l heads, as attention called head run by head run returns them) ->
// [B, heads, T, X], rows of the first l - 1 queries `fill` (their gradient is dropped). Each run
// lands in its heads' rows directly: joining them first would copy every folded row once more.
// Needs NF = T / l and the runs' heads to sum to `heads`.
at::Tensor NsaUnfoldRows(const std::vector<at::Tensor>& pieces, int64_t heads, int64_t l,
                         int64_t t, double fill);

// rows [B, H, T, X] <- folded [B, H l, NF, X] (NF = T / l), converting dtypes, rows of the first
// l - 1 queries 0: NsaUnfoldRows without autograd, into a given tensor. On CUDA with rows fp32,
// folded bf16, both contiguous, one kernel (trainer_lib/kernels/nsa_selected.h's
// NsaUnfoldRowsToFloat, where the build has it): the compressed branch's dq unfolded as the fp32
// rows the sparse branches add theirs into (nsa_sparse.h). Shapes are checked (TORCH_CHECK).
void NsaUnfoldRowsInto(const at::Tensor& rows, const at::Tensor& folded, int64_t l);

// dst.copy_(src), moved as 8-byte elements where both allow it (one dtype, the last dim of unit
// stride, every offset a multiple of 8 bytes). LibTorch's strided copy spends its time on index
// arithmetic per element: bf16 rows so move in a quarter of the steps (on an H200, 0.28 ms for
// a 512 MB transposed copy that took 0.66 ms element by element). Not differentiable.
void NsaCopyInWords(const at::Tensor& dst, const at::Tensor& src);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_FOLD_H_
