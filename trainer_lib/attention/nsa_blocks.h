// NSA's block arithmetic (Yuan et al. 2025, arXiv 2502.11089, section 3.3): how keys and values
// are compressed, how compressed attention scores become scores of selection blocks, and which
// blocks each query keeps. nsa.h composes these into the attention; the CUDA fast path
// (nsa_compressed.h) takes NsaTopBlocks for fla's rule over mean-pooled blocks.
//
// Notation: l the compression window, d its stride, l' = block_size the selection block, n =
// selected_blocks; positions 0-based. Compressed window i covers tokens [i d, i d + l) and is
// visible to query t once it has ended, i d + l - 1 <= t; selection block j covers
// [j l', (j + 1) l'). Under mean pooling l = d = l' (fla-core's naive_nsa).
//
// Compression (eq. 7):
//  - mean pooling (fla's mean_pooling): k_cmp[i] = mean(k[i l .. i l + l - 1]).
//  - learned (the paper's phi, "a learnable MLP with intra-block position encoding"), per KV
//    head h: k_cmp[i] = flatten(k[i d .. i d + l - 1] + pe_h) W_h, pe_h: [l, D] added to each
//    window's tokens, W_h: [l D, D]. One linear layer, as XunhaoLai's
//    native-sparse-attention-triton compresses (linear_compress, conv_compress with an
//    intra-block position encoding); the paper gives neither depth nor width. Values have their
//    own W and pe. Initialised to mean pooling over the window (W_h = [I; ...; I] / l, pe = 0),
//    so a model starts from fla's compression over l tokens and learns away from it (our choice;
//    XunhaoLai's draws Xavier-uniform weights).
//
// Selection scores (eqs. 8-10): p_cmp = softmax over the visible windows (nsa.h). Eq. 9 maps
// them onto selection blocks by the tokens they share: a window and a block that share s
// stride segments of d tokens add s times, so
//     p_slc[j] = sum_{m in [0, l'/d)} sum_{n in [0, l/d)} p_cmp[(l'/d) j + m - n],
// m the block's d-segment, n counting back the windows that cover that segment (terms outside
// [0, NC) are 0). With the paper's l = 32, d = 16, l' = 64: windows 4j-1 .. 4j+3 with weights
// 1, 2, 2, 2, 1. The paper prints the index as (l'/d) j - m - n: the same weights on windows
// 4j-4 .. 4j, which overlap block j - 1 rather than block j; we follow the paper's stated
// intent ("according to their spatial relationship"), as XunhaoLai's transform_score does.
// With l = d = l' it is p_slc = p_cmp. Eq. 10 sums p_slc over the G query heads of a KV group;
// we average (the same ranking, and fla's naive_nsa_topk averages).
//
// Selection (eq. 11 and section 4.1), two rules:
//  - fla (fla-core 0.6.0 naive_nsa_topk, pinned): block 0, the query's own block t / l' and the
//    one before it are forced in with score 1 (above any group-mean probability; under learned
//    compression the eq. 9 scores are divided by l/d to stay <= 1, which keeps their ranking);
//    then the n highest-scoring blocks are kept if they ended by t (j l' + l' - 1 <= t) or are
//    forced. The paper's experiments run n = 16 "including fixed activating the 1 initial block
//    and 2 local blocks" (section 4.1): this rule.
//  - paper (eq. 11 as section 3.3.2 defines it): the top n blocks by p_slc, nothing forced,
//    among the blocks that hold a score, those overlapping at least one visible window (with
//    l = d = l': the blocks that ended). A query that sees no window yet (t < l - 1) selects
//    nothing and its selected branch is 0, as the compressed branch's is.
// Either way slots left over are -1, kept blocks come in descending score, and ties go to
// torch::topk's order.
//
// Everything here is a pure function of its tensors; safe from any thread on distinct tensors.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_BLOCKS_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_BLOCKS_H_

#include <cstdint>
#include <optional>

#include <ATen/core/Tensor.h>

#include "common/model_math.h"

namespace ablate::train {

// The learned compression's parameters, fp32, for one layer: each map [H_kv, l D, D] and each
// position encoding [H_kv, l, D]. Undefined tensors under mean pooling.
struct NsaCompressionWeights {
  at::Tensor k_weight, k_pe, v_weight, v_pe;
};

// Mean of x over each full block of l tokens: [B, H_kv, T, D] -> [B, H_kv, T / l, D]. A partial
// last block is left out: no query ever sees it. The sums and result are in `dtype` where it is
// given (x's otherwise), without a copy of x in it; x's gradient comes back in x's dtype.
at::Tensor NsaMeanPool(const at::Tensor& x, int64_t block_size,
                       std::optional<at::ScalarType> dtype = std::nullopt);

// The learned phi over windows of `kernel` tokens every `stride`: [B, H_kv, T, D] ->
// [B, H_kv, NC, D], NC = (T - l) / d + 1 for T >= l, else 0. weight: [H_kv, l D, D]; pe:
// [H_kv, l, D]; all one float dtype. Differentiable in x, weight and pe.
at::Tensor NsaLearnedCompress(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& pe,
                              int64_t kernel, int64_t stride);

// The map whose phi is the mean over its window: [kv_heads, kernel * head_dim, head_dim] fp32.
at::Tensor NsaMeanCompressionWeight(int64_t kv_heads, int64_t kernel, int64_t head_dim);

// Eq. 9 as above: p_cmp [..., NC] -> p_slc [..., blocks], in p_cmp's dtype, for the window,
// stride and selection block of `shape` (kernel(), stride(), block_size).
at::Tensor NsaSelectionScores(const at::Tensor& p_cmp, int64_t blocks, const NsaShape& shape);

// The blocks kept by `shape`'s rule for queries first_query .. first_query + Tc - 1:
// [B, H_kv, Tc, n] int64. score: [B, H_kv, Tc, NB] fp32, the group-mean p_slc (zero past the
// blocks each query can score), NB at least the last query's own block + 1 and at most
// ceil(seq_len / l') (blocks past every query's own block can never be kept).
at::Tensor NsaTopBlocks(const at::Tensor& score, int64_t first_query, const NsaShape& shape);

// The blocks of block_size tokens that query t's window (t - w, t] touches, for every query:
// [batch, kv_heads, T, n] int32 on `device`, blocks max(0, t - w + 1) / l .. t / l ascending,
// then -1. n = min(ceil((w - 1) / l) + 1, ceil(T / l)): w consecutive tokens starting at a
// block's last token touch ceil((w - 1) / l) + 1 blocks, and none touch more. Built with
// LibTorch on the device (no kernels needed). Requires w, l, T > 0 (TORCH_CHECK).
at::Tensor NsaWindowBlockIndices(int64_t batch, int64_t kv_heads, int64_t seq_len,
                                 int64_t block_size, int64_t window, const at::Device& device);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_BLOCKS_H_
