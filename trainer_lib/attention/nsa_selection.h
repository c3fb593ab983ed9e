// NSA's block selection on our CUDA kernels, bound to LibTorch: the fused kernel that scores and
// ranks in one pass (trainer_lib/kernels/nsa_selection.h) and the top-blocks kernel that ranks a
// chunk's scores from a GEMM (trainer_lib/kernels/nsa_top_blocks.h). nsa_compressed.h's
// NsaCompressedAndSelect takes the first where it runs, the second elsewhere, and the LibTorch
// chain (nsa_blocks.h's NsaTopBlocks, the rule's reference) where neither does. Both kernels are
// compiled in only where nvcc and a LibTorch with CUDA are both there (nsa_cuda.h's
// NsaKernelsEnabled); without them the Takes calls are false and the others fail (TORCH_CHECK).
//
// Thread-safety: as LibTorch operators; launches go to the current CUDA stream.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_SELECTION_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_SELECTION_H_

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ablate::train {

// True when NsaKernelsEnabled() and the fused selection kernel takes q [B, H, T, D] over
// `kv_heads` key/value heads, blocks of `block_size` and `selected` kept blocks: q on CUDA, B > 0,
// D in {64, 128, 256}, H / H_kv <= 128, B H_kv <= 65535, 0 < T < 2^31, n <= 32, and its shared
// memory within the device's limit per thread block.
bool NsaSelectionKernelTakes(const at::Tensor& q, int64_t kv_heads, int64_t block_size,
                             int64_t selected);

// fla's selection for every query, written into block_idx [B, H_kv, T, n] int32 (contiguous, on
// q's device): kept blocks in descending score, then -1. q: [B, H, T, D]; k_cmp: [B, H_kv,
// T / block_size, D], the full blocks' mean-pooled keys (NsaMeanPool); both rounded to bf16
// (the scores are bf16 products with fp32 sums, as the GEMM path's). The softmax's scale is
// 1 / sqrt(D). lse, when defined: [B, H, T] fp32 on q's device, each (head, query)'s softmax
// log-sum-exp over the blocks it sees (natural log, of the same bf16 q and k_cmp; any value for
// the first block_size - 1 queries, which see none), as the compressed attention returns it:
// the kernel then takes its statistics from it instead of a pass of its own. No gradient. Fails
// (TORCH_CHECK) on tensors that do not fit or a failed launch.
void NsaSelectionInto(const at::Tensor& q, const at::Tensor& k_cmp, const at::Tensor& lse,
                      int64_t block_size, at::Tensor& block_idx);

// True when NsaKernelsEnabled() and the top-blocks kernel (trainer_lib/kernels/nsa_top_blocks.h)
// takes a selection for q [B, H, T, D] over `kv_heads` heads of blocks of `block_size`: q on
// CUDA, B H_kv <= 65535, H / H_kv <= 128, T < 2^31, and a score per block of the last query
// within the device's shared memory per thread block.
bool NsaTopBlocksKernelTakes(const at::Tensor& q, int64_t kv_heads, int64_t block_size);

// fla's selection (nsa_blocks.h's NsaTopBlocks over mean-pooled blocks) for the queries
// first_query .. first_query + queries - 1 from their raw compressed scores, written into
// those rows of block_idx [B, H_kv, T, n] int32 (contiguous, CUDA). scores: [B H_kv, G queries,
// NFc] fp32 contiguous on block_idx's device, row g queries + i for head g of the group and
// query first_query + i, unscaled (q k_cmp^T; `scale` is applied before the softmax), NFc at
// least the blocks the last query sees, min((first_query + queries) / l, T / l); undefined when
// NFc is 0. Fails (TORCH_CHECK) on tensors that do not fit or a failed launch.
void NsaTopBlocksInto(const at::Tensor& scores, int64_t group_size, int64_t first_query,
                      int64_t queries, int64_t block_size, double scale, at::Tensor& block_idx);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_SELECTION_H_
