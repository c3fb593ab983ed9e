// Model math: what a Qwen3 training job costs, as plain arithmetic on its configs, so the
// coordinator (placement), the CLI (plans) and the trainer (MFU) agree without LibTorch.
//
//  - ParameterCount: trainable parameters, as transformers counts them.
//  - TrainingFlopsPerToken: model FLOPs of one trained token (forward + backward), the
//    numerator of MFU as in PaLM (Chowdhery et al. 2022, appendix B): 6 per matrix parameter
//    plus the attention score and value products for the attention kind and context length.
//  - PlanMemory: the peak bytes one rank holds while training (weights, gradients, optimizer
//    state, activations saved for backward, the loss's transient buffers), what PyTorch's
//    caching allocator reports as peak allocated memory; not the CUDA context or allocator
//    fragmentation.
//  - PeakMatmulFlops: a device's dense bf16 matrix throughput, the denominator of MFU.
//
// Everything here is pure and safe to call from any thread.
#ifndef ABLATE_COMMON_MODEL_MATH_H_
#define ABLATE_COMMON_MODEL_MATH_H_

#include <algorithm>
#include <cstdint>
#include <string>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ablate {

// The shape of Native Sparse Attention's three branches (Yuan et al. 2025, section 3.3). By
// default as fla-core builds them: keys and values mean-pooled per block, with one block size
// for compression, its stride and selection (the paper's l = d = l'), and fla's selection rule.
// With learned_compression, the paper's compression: a learned map over windows of
// compression_kernel tokens (l) every compression_stride tokens (d), with blocks of block_size
// (l') selected. Defaults: fla's and the paper's block of 64 and 16 selected blocks, the
// paper's window of 512, kernel 32 and stride 16. TrainConfig's attention_args set them
// (common/attention_args.h, which checks that d divides l and l', and l <= l').
// Under activation checkpointing, sequences of more than 2 kMlpChunkTokens tokens recompute
// each layer's MLP per chunk of kMlpChunkTokens positions in backward (trainer_lib/model/qwen3.h),
// and the memory plan counts the MLP's activations for one chunk.
inline constexpr int64_t kMlpChunkTokens = 65536;

struct NsaShape {
  int64_t block_size = 64;           // l': tokens per selected block (and per mean-pooled block)
  int64_t selected_blocks = 16;      // n: blocks each query attends to, forced ones included
  int64_t window = 512;              // w: sliding window; 0 turns the branch off
  bool learned_compression = false;  // the paper's learned map instead of mean pooling
  int64_t compression_kernel = 32;   // l under learned_compression
  int64_t compression_stride = 16;   // d under learned_compression
  // The paper's selection rule (eq. 11: the top n blocks by score, none forced) instead of
  // fla's (the first and the two local blocks forced in). trainer_lib/attention/nsa_blocks.h.
  bool paper_selection = false;

  // The compression window l and stride d in effect: block_size for both under mean pooling.
  int64_t kernel() const { return learned_compression ? compression_kernel : block_size; }
  int64_t stride() const { return learned_compression ? compression_stride : block_size; }
};

// Trainable parameters, counting a tied embedding once. Qwen3-0.6B: 596,049,920, the figure
// transformers reports. `attention` is "dense" or "nsa"; NSA adds its gate projection per layer,
// and under learned compression its maps and position encodings (trainer_lib/attention/nsa.h's
// NsaAttention registers them).
int64_t ParameterCount(const v1::ModelConfig& config, absl::string_view attention = "dense",
                       const NsaShape& nsa = {});

// Keys one query at position t (0-based) attends to, averaged over t in [0, context_length):
// t+1 for dense causal attention; for NSA the compressed windows that ended by t, plus up to
// selected_blocks * block_size selected tokens, plus up to `window` tokens.
double MeanKeysPerQuery(absl::string_view attention, int64_t context_length,
                        const NsaShape& nsa = {});

// Forward + backward FLOPs per token: 6 * (parameters used in matrix products: the input
// embedding is a lookup and counts only when tied, as the output head) + 12 * layers * heads *
// head_dim * MeanKeysPerQuery (QK^T and PV, 2 FLOPs per multiply-add, backward twice the
// forward). `attention` is "dense" or "nsa"; NSA's gate projections count as parameters, and
// under learned compression its maps, each applied once per compressed window (1 / d per token).
double TrainingFlopsPerToken(const v1::ModelConfig& config, int64_t context_length,
                             absl::string_view attention = "dense", const NsaShape& nsa = {});

// Memory of one rank, in bytes, by what holds it. Weights and optimizer state live through the
// whole step; the rest comes and goes, and the peak is the largest of four moments:
//  - the forward's end, at the loss: every activation saved for backward and one chunk of the
//    loss's logits, before any gradient exists (the step's gradients are freed after each
//    update, as zero_grad(set_to_none) leaves them);
//  - under activation checkpointing, the backward's start: every layer's kept input, freed one
//    by one as backward passes the layers, while the last layer is recomputed, beside the
//    gradients made so far (the output head's, the final norm's and that layer's). Backward
//    frees a layer's input and adds its gradients as it goes: at long contexts an input
//    outweighs a layer's gradients and this moment leads, at short ones the backward's end;
//  - the backward's end: every gradient, and under activation checkpointing one layer's
//    recomputed activations, after the saved activations were freed layer by layer;
//  - the optimizer step: every gradient and the step's own working memory (SOAP's, Shampoo's
//    and SOAP-4bit's batched preconditioner work).
// Checked against the allocator's peak on an H200 (docs/benchmarks.md, "Memory plan", and
// "The optimizer step's working memory").
struct MemoryPlan {
  int64_t weights = 0;      // fp32 master weights
  int64_t gradients = 0;    // fp32, one per weight
  int64_t optimizer = 0;    // optimizer state (moments, preconditioners, quantization scales)
  int64_t activations = 0;  // saved for backward over one micro-batch, plus bf16 weight copies
  int64_t loss = 0;         // logits and their gradient for one chunk of the cross-entropy
  // One layer's activations rebuilt in backward (checkpointing); under NSA's kernels also the
  // gradients its backward holds at once.
  int64_t recompute = 0;
  // Every layer's fp32 input, kept by checkpointing (in activations), and under NSA's kernels
  // every layer's selection.
  int64_t checkpoints = 0;
  int64_t host_checkpoints = 0;  // the offloaded layers' inputs, in pinned host memory (not total)
  int64_t first_grads = 0;       // the gradients made when backward reaches the last layer
  int64_t optimizer_step = 0;    // working memory of the optimizer's step, beside the gradients
  int64_t forward_end() const { return activations + loss; }
  int64_t backward_start() const { return checkpoints + recompute + first_grads; }
  int64_t backward_end() const { return gradients + recompute; }
  int64_t step_end() const { return gradients + optimizer_step; }
  int64_t total() const {
    return weights + optimizer +
           std::max({forward_end(), backward_start(), backward_end(), step_end()});
  }
};

// What one rank trains: the settings of a TrainConfig the plan depends on.
struct RankWork {
  std::string optimizer = "adamw";  // a name from OptimizerNames()
  int64_t micro_batch_size = 1;     // sequences per forward/backward
  int64_t context_length = 2048;    // tokens per sequence
  bool bf16 = true;                 // autocast to bf16 (else fp32 activations)
  // The trainer runs its fused RMSNorm, SwiGLU and cross-entropy kernels
  // (trainer_lib/model/fused_norm.h, fused_swiglu.h, trainer_lib/train/cross_entropy.h): a CUDA
  // device, bf16, a build with the kernels and ABLATE_FUSED_KERNELS not "0". They keep less for
  // backward, and the loss no fp32 copy of its logits, but NSA's kernels hold more than its
  // reference does. Only the trainer knows; the coordinator's placement
  // (sweep/memory_planner.h) plans a bf16 job both ways and takes the larger.
  bool fused_kernels = false;
  bool activation_checkpointing = false;
  // Layers whose checkpoints live in pinned host memory (TrainConfig's
  // checkpoint_offload_layers): they leave `checkpoints` for `host_checkpoints`.
  int64_t offloaded_layers = 0;
  // The cross-entropy computes logits for this many tokens at a time (TrainConfig's
  // loss_chunk_tokens; the trainer's default).
  int64_t loss_chunk_tokens = 4096;
  std::string attention = "dense";  // "dense" or "nsa", of shape `nsa`
  NsaShape nsa;
  // The ranks the optimizer state is split over (ZeRO-1, trainer_lib/dist/zero.h): each holds
  // about 1/N of it, whole parameters per owner. 1: every rank holds all of it.
  int64_t optimizer_shards = 1;
  // TrainConfig.optimizer_args; those unset take their defaults. The ones that change the
  // state's size are read (common/optimizer_state.h, OptimizerStateArgsOf).
  google::protobuf::Map<std::string, double> optimizer_args;
};

// What one rank of `train` does: its micro-batch (by default the batch split over its WorldSize
// ranks), precision, activation checkpointing, loss chunk and attention; its optimizer and
// optimizer_args; its optimizer state split over the ranks under optimizer_sharding zero1 (under
// auto the trainer decides from the GPU's memory: planned here as replicated, the larger of the
// two).
RankWork RankWorkOf(const v1::TrainConfig& train);

// Plans one rank of `work` on `model`. The optimizer term sums OptimizerStateBytes
// (common/optimizer_state.h) over the model's weights, each by the optimizer's own rule for
// which dimensions it preconditions. The activation term counts, per token and layer, the
// tensors LibTorch keeps for backward in a Qwen3 decoder layer (the fp32 residual stream and
// norm inputs, the bf16 copies autocast makes of each projection's input, q/k/v before and
// after their norms and RoPE, attention output, the SwiGLU branches; with `fused_kernels` the
// norms' inputs and per-row rstd, their bf16 outputs once, and the MLP's input and gate-up
// projection only, without the bf16 casts of the MLP's weights; under NSA also its gate
// projection's input, the gates, the fp32 copies of q, k, v and the gates that its
// recomputed chunks keep, and the pooled keys and values, or under learned compression the
// compressed ones with the windows their maps keep for backward; on the kernels' path, under
// the fused kernels, what the kernels' and the fused attention's nodes keep instead of the fp32
// copies); with activation checkpointing only each layer's fp32 input is kept (on the host for
// the offloaded layers), and one layer's tensors exist again while it is recomputed, the first
// of them while every input is still kept. InvalidArgument for an optimizer it does not know.
absl::StatusOr<MemoryPlan> PlanMemory(const v1::ModelConfig& model, const RankWork& work);

// Dense bf16 tensor-core FLOP/s of a device named as CUDA names it ("NVIDIA H200", "NVIDIA
// H100 80GB HBM3", ...), from NVIDIA's data sheets (SXM parts, without sparsity); 0 for a
// device it does not know, a CPU among them (MFU is then not reported).
double PeakMatmulFlops(absl::string_view device_name);

}  // namespace ablate

#endif  // ABLATE_COMMON_MODEL_MATH_H_
