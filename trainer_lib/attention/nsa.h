// Native Sparse Attention (Yuan et al. 2025, "Native Sparse Attention: Hardware-Aligned and
// Natively Trainable Sparse Attention", arXiv 2502.11089), as fla-core 0.6.0's naive reference
// computes it (fla/ops/nsa/naive.py: naive_nsa with naive_nsa_compression, naive_nsa_topk and
// naive_nsa_selection), in plain LibTorch on any device.
//
// With l = block_size, n = selected_blocks, w = window, scale = 1 / sqrt(D), positions 0-based,
// query head h reading key/value head h / G (G = H / H_kv), each query t gets three outputs
// (nsa_blocks.h holds the compression, eq. 9's scores and the selection rules):
//
//  1. Compressed (paper eq. 7, fla's mean_pooling): k_cmp[c] = mean(k[c*l .. c*l+l-1]) and
//     likewise v_cmp, over full blocks only. Block c is visible once it has ended,
//     (c+1)*l - 1 <= t. o_cmp = softmax(scale q k_cmp^T over visible c) v_cmp, and 0 for a
//     query that sees no block yet (t < l - 1), as fla's nan_to_num makes it. Under
//     learned_compression the paper's phi over windows of compression_kernel tokens every
//     compression_stride instead, visible once each window has ended.
//  2. Selected (paper eqs. 8-12; with l' = l = d, eq. 9's p_slc is p_cmp): each block's
//     score is its compressed attention probability averaged over the G query heads of the
//     group (paper eq. 10 sums them: same order), so every head of a group reads the same
//     blocks. By default fla's rule: the first block, the query's own block t/l and the one
//     before it are forced in with score 1 (the paper's section 4.1 also fixes "1 initial
//     block and 2 local blocks" among the n), and the n highest-scoring blocks are kept when
//     visible or forced (slots beyond the visible ones are -1); under paper_selection eq. 11
//     alone. o_slc = softmax over the tokens s <= t of the kept blocks, 0 when none is kept.
//  3. Sliding window: o_swa = softmax over tokens s with t - w < s <= t (flash-attn's
//     window_size = (w - 1, 0), as fla's naive_nsa calls it); w = 0 turns the branch off.
//
// out = g_cmp * o_cmp + g_slc * o_slc + g_swa * o_swa, the gates g in (0, 1) per query and
// head. In NsaAttention they are sigmoid(hidden W_g^T) with W_g: [3H, hidden] (fla's
// layers/nsa.py: g_proj, then sigmoid and unbind into cmp, slc, swa).
//
// Everything is computed in fp32 with autocast off (fla's naive upcasts too) and cast back to
// q's dtype. Queries are processed in chunks, each recomputed in backward, so what is kept for
// backward is linear in T: the fp32 inputs and the output. Compute is not: the compressed
// branch is O(T^2 / l), and each chunk's backward adds a gradient of k's full size.
//
// On CUDA tensors the kernels take (nsa_cuda.h), under mean pooling and fla's rule, NsaAttend
// computes the compressed branch and the selection in bf16 on tensor cores (nsa_compressed.h:
// scored once per forward, the selection kept for backward) and the selected and window
// branches on our kernels (the window as the blocks it touches with the keys below it masked),
// in bf16 with fp32 accumulation. The chunked reference above runs on the CPU, with
// ABLATE_NSA_KERNELS=0, and for learned compression and the paper's rule.
//
// Thread-safety: functions are pure; NsaAttention, like any torch module, is used by one thread
// at a time.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_NSA_H_
#define ABLATE_TRAINER_LIB_ATTENTION_NSA_H_

#include <cstdint>
#include <deque>

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/linear.h>

#include "common/model_math.h"
#include "trainer_lib/attention/attention.h"
#include "trainer_lib/attention/nsa_blocks.h"

namespace ablate::train {

struct NsaOptions {
  NsaShape shape;  // the branches' shape and rules (common/attention_args checks them)
  // Queries per recomputed chunk; 0 picks one so that a chunk's gathered keys stay near 2^25
  // elements. Results do not depend on it beyond floating-point summation order.
  int64_t query_chunk = 0;
  // What the fused compressed attention's backward may allocate at once (nsa_compressed.h): it
  // runs whole key/value heads at a time, as many as keep 8 bytes per element of their folded
  // queries within this, one at least; 0 picks 4 GiB. Results do not depend on it.
  int64_t fused_chunk_bytes = 0;
  // Whether the caller vouches that no gate is below 0, as a sigmoid's are (NsaAttention's):
  // NsaAttend then takes the gated branches' one node (nsa_sparse.h) without reading the gates'
  // sign back to the host, a wait for the device on every call. A negative gate under it is
  // undefined behaviour (that node folds each gate into its branch's lse as ln g).
  bool gates_nonnegative = false;
};

// The blocks each query reads in the selected branch: [B, H_kv, T, n] int64, kept blocks in
// descending score, then -1. q: [B, H, T, D]; k: [B, H_kv, T, D]; fp32 or any float dtype;
// `weights` only under learned compression. No gradient flows through the choice.
at::Tensor NsaBlockIndices(const at::Tensor& q, const at::Tensor& k, const NsaOptions& options,
                           const NsaCompressionWeights& weights = {});

// The gated sum of the three branches: [B, H, T, D] in q's dtype. q: [B, H, T, D]; k, v:
// [B, H_kv, T, D] with H a multiple of H_kv; gates: [B, H, T, 3] holding g_cmp, g_slc, g_swa in
// that order; `weights` (nsa_blocks.h) required under learned compression, else unused.
// Differentiable in q, k, v, gates and the weights. Shapes are checked (TORCH_CHECK).
// `selection`, on the kernels' fast path only: when it holds [B, H_kv, T, n] int32 blocks
// (an earlier call's on the same q and k) they are used instead of scoring the compressed
// blocks again, unless the compressed branch falls back to its chunks (where SDPA would pick
// its math kernel: they score as they go); it then receives the blocks actually used. Elsewhere
// it is left be.
at::Tensor NsaAttend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& gates, const NsaOptions& options,
                     const NsaCompressionWeights& weights = {}, at::Tensor* selection = nullptr);

// The selected branch alone (branch 2 above) on given block indices: [B, H, T, D] in q's
// dtype and computed in it (the kernel tests' fp32 reference and their bf16 baseline). q: [B, H,
// Tq, D], the queries at positions first_query .. first_query + Tq - 1; k, v: [B, H_kv, T, D];
// block_idx: [B, H_kv, Tq, n], any integer dtype, -1 for empty. window w > 0 also hides the keys
// s <= t - w, as the kernels' window does (nsa_cuda.h). Differentiable in q, k and v; memory
// O(Tq n l D), unchunked: for tests.
at::Tensor NsaSelectedReference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& block_idx, int64_t block_size,
                                int64_t first_query = 0, int64_t window = 0);

// The sliding-window branch alone (branch 3 above, w = window > 0): [B, H, T, D] in q's dtype
// and computed in it (the window kernels' fp32 reference and bf16 baseline). q: [B, H, T, D];
// k, v: [B, H_kv, T, D]. Differentiable in q, k and v; memory O(H T^2), unchunked: for tests.
at::Tensor NsaWindowReference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              int64_t window);

// The compressed branch alone (branch 1 above): [B, H, T, D] in q's dtype and computed in it
// (the fast path's fp32 reference and its bf16 baseline in the tests). q: [B, H, T, D]; k, v:
// [B, H_kv, T, D]. Differentiable in q, k and v; memory O(H T^2 / l), unchunked: for tests.
at::Tensor NsaCompressedReference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  int64_t block_size);

// The Attention kind "nsa": NsaAttend with gates sigmoid(g_proj(hidden)), g_proj a bias-free
// linear [hidden_size -> 3 * heads] registered as "g_proj" (so its weight is named
// layers.N.self_attn.attention.g_proj.weight). Under learned compression it also owns the
// maps and position encodings of nsa_blocks.h, registered as "k_compress" and "v_compress"
// [kv_heads, l * head_dim, head_dim] and "k_compress_pe" and "v_compress_pe" [kv_heads, l,
// head_dim], initialised to mean pooling over each window (3-D, so the model's own
// initialisation of its matrices leaves them be).
class NsaAttention : public Attention {
 public:
  NsaAttention(int64_t hidden_size, int64_t heads, int64_t kv_heads, int64_t head_dim,
               const NsaOptions& options);

  // Under checkpointing the forward without autograd keeps its selection for the
  // recomputation in backward (NsaAttend's `selection`): the compressed scores, quadratic in T
  // and most of a step at 1M tokens, are computed once, and backward selects exactly the blocks
  // forward did. Costs [B, H_kv, T, n] int32 per layer until its backward (512 MiB per layer at
  // 1M tokens on Qwen3-0.6B; common/model_math counts it).
  void set_recomputed(bool on) override {
    recomputed_ = on;
    kept_.clear();
  }

 protected:
  at::Tensor Compute(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& hidden) override;

 private:
  const int64_t heads_;
  const NsaOptions options_;
  torch::nn::Linear g_proj_{nullptr};
  NsaCompressionWeights compression_;  // registered parameters; undefined under mean pooling
  bool recomputed_ = false;
  std::deque<at::Tensor> kept_;  // selections of forwards whose backward has not run yet
};

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_NSA_H_
