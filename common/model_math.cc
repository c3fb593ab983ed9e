#include "common/model_math.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/match.h"
#include "common/attention_args.h"
#include "common/optimizer_state.h"
#include "common/train_config.h"

namespace ablate {
namespace {

// One weight's shape, as the model holds it.
struct Weight {
  std::vector<int64_t> shape;
  bool hidden_matrix;  // a 2-D weight inside a decoder layer (what Muon orthogonalizes)
  int64_t size() const {
    int64_t n = 1;
    for (int64_t side : shape) n *= side;
    return n;
  }
};

// Every weight of a Qwen3 model, in transformers' shapes ([out, in] for a linear), plus NSA's
// gate projection [3 heads, hidden] per layer when `nsa` is given, and under its learned
// compression the maps of keys and values, [H_kv, l D, D] each, and their intra-block position
// encodings, [H_kv, l, D] each (trainer_lib/attention/nsa_blocks.h), which are no hidden
// matrices (Muon leaves 3-D tensors to AdamW).
std::vector<Weight> Weights(const v1::ModelConfig& c, const NsaShape* nsa = nullptr) {
  const int64_t h = c.hidden_size();
  const int64_t d = c.head_dim();
  const int64_t q = int64_t{c.num_attention_heads()} * d;
  const int64_t kv = int64_t{c.num_key_value_heads()} * d;
  const int64_t i = c.intermediate_size();
  std::vector<Weight> weights = {{{c.vocab_size(), h}, false}};  // embed_tokens
  for (uint32_t layer = 0; layer < c.num_hidden_layers(); ++layer) {
    weights.insert(weights.end(), {{{q, h}, true},   // q_proj
                                   {{kv, h}, true},  // k_proj
                                   {{kv, h}, true},  // v_proj
                                   {{h, q}, true},   // o_proj
                                   {{d}, false},     // q_norm
                                   {{d}, false},     // k_norm
                                   {{i, h}, true},   // gate_proj
                                   {{i, h}, true},   // up_proj
                                   {{h, i}, true},   // down_proj
                                   {{h}, false},     // input_layernorm
                                   {{h}, false}});   // post_attention_layernorm
    if (nsa == nullptr) continue;
    weights.push_back({{3 * int64_t{c.num_attention_heads()}, h}, true});
    if (nsa->learned_compression) {
      const int64_t hkv = c.num_key_value_heads();
      const int64_t l = nsa->compression_kernel;
      // Keys' map and position encoding, then values'.
      weights.insert(weights.end(), {{{hkv, l * d, d}, false},
                                     {{hkv, l, d}, false},
                                     {{hkv, l * d, d}, false},
                                     {{hkv, l, d}, false}});
    }
  }
  weights.push_back({{h}, false});                                                // norm
  if (!c.tie_word_embeddings()) weights.push_back({{c.vocab_size(), h}, false});  // lm_head
  return weights;
}

// Working memory of one optimizer step, in bytes, for a model whose weights hold
// `preconditioner_elements` preconditioner entries in all (PreconditionerElements, by the
// optimizer's own rule). SOAP, Shampoo and SOAP-4bit stack same-shaped factors, bases and
// gradients into batches of at most 2^28 float32 elements (trainer_lib/optim/kronecker.h,
// soap.cc, soap4bit.cc), and a batch's step or refresh holds
// several such copies at once (the stacks, their products, QR's or eigh's outputs). Measured on
// an H200, Qwen3-0.6B: 6.6 GiB beyond the gradients in SOAP's refresh steps and 6.1 GiB in
// Shampoo's steps, where a batch is full (docs/benchmarks.md); planned as 7 full batches, or 7
// copies of every preconditioner when they fill less than one. The other optimizers work
// tensor by tensor (fused AdamW, the 8-bit kernel) or in Muon's bf16 batches of the same
// bound, within what the plan's other ends leave.
double OptimizerStepBytes(const std::string& optimizer, int64_t preconditioner_elements) {
  if (optimizer != "soap" && optimizer != "shampoo" && optimizer != "soap4bit") return 0;
  constexpr int64_t kBatchElements = int64_t{1} << 28;
  return 7.0 * 4.0 * double(std::min(kBatchElements, preconditioner_elements));
}

// Bytes NSA keeps for backward per token and layer beyond what dense attention keeps
// (trainer_lib/attention/nsa.h): the sigmoid's gates; under autocast also g_proj's own bf16
// cast of its input and the fp32 copies of q, k, v and the gates that the recomputed chunks
// keep (in fp32 those are the tensors themselves); and the compressed k and v, one per stride
// d; under learned compression also the fp32 windows of l tokens its maps keep, one per d.
double NsaBytesPerToken(const v1::ModelConfig& c, double a, const NsaShape& nsa) {
  const double h = c.hidden_size();
  const double q = double(c.num_attention_heads()) * c.head_dim();
  const double kv = double(c.num_key_value_heads()) * c.head_dim();
  const double gates = 3.0 * c.num_attention_heads();
  const double copies = a < 4 ? a * h + 4 * (q + 2 * kv + gates) : 0;
  const double windows = nsa.learned_compression ? double(nsa.kernel()) : 0.0;
  return a * gates + copies + 2 * 4 * kv * (1 + windows) / double(nsa.stride());
}

// The same on the kernels' path (trainer_lib/attention/nsa.h's fast path: CUDA, bf16, pooled
// compression under fla's rule), from the tensors its autograd nodes keep: the gates in bf16;
// the selected and window kernels' bf16 outputs, fp32 log-sum-exps and int32 block indices (n
// selected, and the window's ceil((w - 1) / 64) + 1 blocks of 64), and the selected branch's
// reverse index where it is kept (int32, an entry per selected block, up to 256 MiB a layer:
// nsa_cuda.h's kNsaKeptIndexBytes; `tokens` per micro-batch); the compressed branch's fused
// attention, which keeps its folded copy of q, its bf16 output and log-sum-exp and the pooled bf16
// keys and values, and its output padded to T rows, which the gate node keeps (nsa_gate.h). q, k
// and v themselves are the dense layer's.
double NsaKernelBytesPerToken(const v1::ModelConfig& c, const NsaShape& nsa, double tokens) {
  const double heads = c.num_attention_heads(), kv_heads = c.num_key_value_heads();
  const double q = heads * c.head_dim();
  const double kv = kv_heads * c.head_dim();
  const double gates = 2 * 3 * heads;
  const double index = 4 * kv_heads * nsa.selected_blocks;
  const bool index_kept = index * tokens <= double(int64_t{256} << 20);
  const double selected = 2 * q + 4 * heads + (index_kept ? 2 : 1) * index;
  // NsaWindowBlockIndices' slots: the blocks of 64 that keys t - w + 1 .. t can touch.
  const int64_t window_blocks = (nsa.window + 62) / 64 + 1;
  const double window =
      nsa.window > 0 ? 2 * q + 4 * heads + 4 * kv_heads * double(window_blocks) : 0.0;
  const double compressed = 3 * 2 * q + 4 * heads + 2 * 2 * kv / double(nsa.block_size);
  return gates + selected + window + compressed;
}

// Bytes per token of the gradients NSA's backward on the kernels holds at once, beyond the
// layer's kept tensors: the gate node's three bf16 branch gradients (nsa_gate.h), a kernel
// node's fp32 dk and dv and bf16 dq (nsa_cuda.h; the window's FlashAttention node holds the
// same, nsa_window.h), the gradients of q, k and v gathering the branches', and the gates' fp32
// gradient. On Qwen3-0.6B at 1M tokens (docs/benchmarks.md) the
// plan without them was 31.4 GiB under the measured peak; they are 30.7 GiB.
double NsaKernelBackwardBytesPerToken(const v1::ModelConfig& c) {
  const double heads = c.num_attention_heads();
  const double q = heads * c.head_dim();
  const double kv = double(c.num_key_value_heads()) * c.head_dim();
  return 3 * 2 * q + (2 * 4 * kv + 2 * q) + (2 * q + 2 * 2 * kv) + 4 * 3 * heads;
}

// The larger of the two backward buffers the selected and window branches hold one after the
// other: the selected kernels' fp32 dq buffer where they form dq inside the dk/dv kernel
// (trainer_lib/attention/nsa_cuda.h, NsaDqPath::kAuto: where one (b, h_kv) pair's G T D fp32
// rows are at most 4 GiB; the buffer holds as many pairs as fit 1 GiB, one at least), and what
// the window's FlashAttention backward allocates ((14 H + 4 H_kv) D bytes a query row; all rows
// at once up to 5 GiB, else chunks of 1 GiB; trainer_lib/attention/nsa_window.h). The plan
// cannot know the GPU: on Hopper at D = 128 the window's own kernels run instead, which allocate
// none of that, so there it is an upper bound.
double NsaDqAccumulatorBytes(const v1::ModelConfig& c, const NsaShape& nsa, int64_t batch,
                             int64_t seq_len) {
  const double budget = double(int64_t{1} << 30);
  const double heads = c.num_attention_heads(), kv_heads = c.num_key_value_heads();
  const double window_all =
      (14 * heads + 4 * kv_heads) * c.head_dim() * double(batch) * double(seq_len);
  const double window = nsa.window <= 0 ? 0.0 : (window_all <= 5 * budget ? window_all : budget);
  const int64_t groups = c.num_attention_heads() / std::max(1u, c.num_key_value_heads());
  const double pair = 4.0 * double(groups) * double(seq_len) * c.head_dim();
  const double max_pair = 4 * budget;  // nsa_cuda.h's kNsaMaxPairBytes
  if (pair > max_pair) return window;
  const double pairs = double(batch) * c.num_key_value_heads();
  return std::max(window, std::max(1.0, std::min(pairs, std::floor(budget / pair))) * pair);
}

// Bytes the MLP keeps for backward per token beyond its input: eager, the gate and up
// projections, silu(gate) and their product, of `a` bytes each; fused (fused_swiglu.h), the
// bf16 [2 I] gate-up projection only.
double MlpBytesPerToken(const v1::ModelConfig& c, double a, bool fused) {
  return fused ? 2 * 2 * double(c.intermediate_size()) : 4 * a * c.intermediate_size();
}

// Bytes one decoder layer keeps for backward per token, with activations of `a` bytes, run
// eagerly (LibTorch's modules under autocast, or fp32).
double LayerActivationBytesPerToken(const v1::ModelConfig& c, double a) {
  const double h = c.hidden_size();
  const double q = double(c.num_attention_heads()) * c.head_dim();
  const double kv = double(c.num_key_value_heads()) * c.head_dim();
  const double norms = 2 * (4 * h + a * h);  // fp32 input and cast output, twice
  // Each norm's output, which its projections keep: in fp32 one tensor the projections share;
  // under autocast (2-byte activations) a bf16 cast for each projection, since autocast caches
  // casts of weights only: q, k and v after the first norm, gate and up after the second.
  const double projection_inputs = a < 4 ? 5 * a * h : 2 * a * h;
  const double qk_norms = 4 * (q + kv) + a * (q + kv);  // fp32 inputs and outputs of q/k norms
  const double rope_and_v = a * (q + kv) + a * kv;      // rotated q, k and v, what SDPA keeps
  const double attention_out = a * q;                   // also o_proj's input
  return norms + projection_inputs + qk_norms + rope_and_v + attention_out +
         MlpBytesPerToken(c, a, /*fused=*/false);
}

// The same under bf16 autocast with the fused kernels (trainer_lib/model/fused_norm.h,
// fused_swiglu.h), from the tensors their autograd nodes save. Each norm keeps its input and
// one fp32 per row (its rstd) and writes bf16, which the projections after it share (autocast
// does not cast a bf16 input again): input_layernorm keeps the fp32 layer input,
// post_attention_layernorm the fp32 residual sum it computes (the add is fused into it), q_norm
// and k_norm the bf16 q and k projections, a row per head. The MLP node keeps its bf16 input
// (post_attention_layernorm's output) and the [2I] gate-up projection. q, k and v after RoPE
// and the attention output are kept as eagerly.
double FusedLayerActivationBytesPerToken(const v1::ModelConfig& c) {
  const double h = c.hidden_size();
  const double heads = c.num_attention_heads(), kv_heads = c.num_key_value_heads();
  const double q = heads * c.head_dim();
  const double kv = kv_heads * c.head_dim();
  const double norms = 2 * (4 * h + 4);        // fp32 input or sum, and rstd, twice
  const double projection_inputs = 2 * 2 * h;  // the two norms' bf16 outputs
  const double qk_norms = 2 * (q + kv) + 4 * (heads + kv_heads);  // bf16 inputs, rstd per head
  const double rope_and_v = 2 * (q + kv) + 2 * kv;
  const double attention_out = 2 * q;
  return norms + projection_inputs + qk_norms + rope_and_v + attention_out +
         MlpBytesPerToken(c, 2, /*fused=*/true);
}

}  // namespace

int64_t ParameterCount(const v1::ModelConfig& config, absl::string_view attention,
                       const NsaShape& nsa) {
  int64_t total = 0;
  for (const Weight& w : Weights(config, attention == "nsa" ? &nsa : nullptr)) total += w.size();
  return total;
}

double MeanKeysPerQuery(absl::string_view attention, int64_t context_length, const NsaShape& nsa) {
  const double t = static_cast<double>(context_length);
  if (attention != "nsa") return (t + 1) / 2;
  // Mean over positions p = 0..T-1 of min(p + 1, cap): the ramp up to cap, then cap.
  auto mean_capped = [&](double cap) {
    if (cap >= t) return (t + 1) / 2;
    return (cap * (cap + 1) / 2 + (t - cap) * cap) / t;
  };
  // Compressed windows that ended by position p: those i with i d + l - 1 <= p, so
  // floor((u) / d) + 1 for u = p - l + 1 >= 0. Summed over u = 0..M-1, M = T - l + 1 = q d + r:
  // d (0 + 1 + ... + (q - 1)) + q r + M. With l = d this is the sum of floor((p + 1) / l).
  const double l = double(nsa.kernel()), d = double(nsa.stride());
  const double m = std::max(0.0, t - l + 1);
  const double q = std::floor(m / d);
  const double r = m - q * d;
  const double compressed = (d * q * (q - 1) / 2 + q * r + m) / t;
  const double selected = mean_capped(double(nsa.selected_blocks * nsa.block_size));
  const double window = mean_capped(double(nsa.window));
  return compressed + selected + window;
}

double TrainingFlopsPerToken(const v1::ModelConfig& c, int64_t context_length,
                             absl::string_view attention, const NsaShape& nsa) {
  // An untied input embedding is a lookup, not a matrix product; a tied one is also the head.
  const double lookup_only =
      c.tie_word_embeddings() ? 0.0 : double(c.vocab_size()) * c.hidden_size();
  // NSA's gate projection, [3 heads, hidden] per layer, is one more matrix product; its
  // learned compression maps two more, each weight used once per compressed window of d tokens.
  const bool nsa_on = attention == "nsa";
  const double layers = c.num_hidden_layers();
  const double gates = nsa_on ? 3.0 * c.num_attention_heads() * c.hidden_size() * layers : 0.0;
  const double maps = nsa_on && nsa.learned_compression
                          ? 2.0 * c.num_key_value_heads() * nsa.kernel() * c.head_dim() *
                                c.head_dim() * layers / double(nsa.stride())
                          : 0.0;
  const double matmul_params = double(ParameterCount(c)) - lookup_only + gates + maps;
  const double attention_flops = 12.0 * c.num_hidden_layers() * c.num_attention_heads() *
                                 c.head_dim() * MeanKeysPerQuery(attention, context_length, nsa);
  return 6.0 * matmul_params + attention_flops;
}

RankWork RankWorkOf(const v1::TrainConfig& train) {
  RankWork work;
  work.optimizer = train.optimizer();
  const int64_t ranks = WorldSize(train);
  // What each rank runs: capped at its share of the batch, as the trainer does. A config that
  // breaks MicroBatchPerRank's rule is refused by validation; it is planned at the share.
  absl::StatusOr<uint32_t> micro = MicroBatchPerRank(train, static_cast<uint32_t>(ranks));
  work.micro_batch_size =
      micro.ok() ? int64_t{*micro} : std::max<int64_t>(1, int64_t{train.batch_size()} / ranks);
  work.context_length = train.context_length();
  work.bf16 = train.precision() == "bf16";
  work.activation_checkpointing = train.activation_checkpointing();
  work.offloaded_layers = train.activation_checkpointing() ? train.checkpoint_offload_layers() : 0;
  if (train.loss_chunk_tokens() > 0) work.loss_chunk_tokens = train.loss_chunk_tokens();
  work.attention = train.attention();
  work.nsa = NsaShapeOf(train);
  work.optimizer_args = train.optimizer_args();
  if (train.optimizer_sharding() == "zero1") work.optimizer_shards = ranks;
  return work;
}

absl::StatusOr<MemoryPlan> PlanMemory(const v1::ModelConfig& model, const RankWork& work) {
  MemoryPlan plan;
  double optimizer = 0;
  const bool nsa = work.attention == "nsa";
  std::vector<Weight> weights = Weights(model, nsa ? &work.nsa : nullptr);
  int64_t parameters = 0;
  int64_t preconditioner_elements = 0;
  const OptimizerStateArgs args = OptimizerStateArgsOf(work.optimizer, work.optimizer_args);
  for (const Weight& w : weights) {
    parameters += w.size();
    preconditioner_elements += PreconditionerElements(work.optimizer, w.shape, args);
    absl::StatusOr<int64_t> bytes =
        OptimizerStateBytes(work.optimizer, w.shape, w.hidden_matrix, args);
    if (!bytes.ok()) return bytes.status();
    optimizer += static_cast<double>(*bytes);
  }
  plan.weights = 4 * parameters;
  plan.gradients = 4 * parameters;
  plan.optimizer =
      static_cast<int64_t>(optimizer / double(std::max<int64_t>(1, work.optimizer_shards)));
  plan.optimizer_step =
      static_cast<int64_t>(OptimizerStepBytes(work.optimizer, preconditioner_elements));

  const double a = work.bf16 ? 2.0 : 4.0;
  const double tokens = double(work.micro_batch_size) * double(work.context_length);
  const bool fused = work.bf16 && work.fused_kernels;
  // The kernels' path runs where the fused kernels do (a CUDA build, bf16), for the shapes it
  // takes; learned compression and the paper's rule stay on the reference.
  const bool nsa_kernels = fused && !work.nsa.learned_compression && !work.nsa.paper_selection;
  const double nsa_extra =
      !nsa          ? 0.0
      : nsa_kernels ? NsaKernelBytesPerToken(model, work.nsa,
                                             double(work.micro_batch_size) * work.context_length)
                    : NsaBytesPerToken(model, a, work.nsa);
  const double per_token =
      fused ? FusedLayerActivationBytesPerToken(model) : LayerActivationBytesPerToken(model, a);
  const double layer = (per_token + nsa_extra) * tokens;
  const double layers = model.num_hidden_layers();
  // Checkpointing keeps each layer's fp32 input and recomputes one layer at a time in backward;
  // the offloaded layers keep theirs in host memory. NSA on the kernels also keeps each layer's
  // selection, int32 [H_kv, n] per token, on the device for its recomputation (nsa.h).
  const double offloaded =
      work.activation_checkpointing ? std::min(double(work.offloaded_layers), layers) : 0.0;
  const double checkpoint = 4.0 * model.hidden_size() * tokens;
  const double selection = nsa && nsa_kernels ? 4.0 * model.num_key_value_heads() *
                                                    double(work.nsa.selected_blocks) * tokens
                                              : 0.0;
  const double checkpoints =
      work.activation_checkpointing ? (layers - offloaded) * checkpoint + layers * selection : 0.0;
  const double kept = work.activation_checkpointing ? checkpoints : layers * layer;
  // Autocast's cache keeps a bf16 copy of every weight it cast until the forward ends; the
  // fused MLP node casts its three weights itself, per call, and keeps none of the casts.
  const double mlp_weights = 3.0 * model.hidden_size() * double(model.intermediate_size()) * layers;
  // NSA's compression maps run with autocast off, in fp32: no copies of them.
  const double compression_maps = nsa && work.nsa.learned_compression
                                      ? 2.0 * model.num_key_value_heads() * work.nsa.kernel() *
                                            model.head_dim() * (model.head_dim() + 1.0) * layers
                                      : 0.0;
  const double weight_copies =
      work.bf16 ? 2.0 * (double(parameters) - compression_maps - (fused ? mlp_weights : 0.0)) : 0.0;
  plan.activations = static_cast<int64_t>(kept + weight_copies);
  if (work.activation_checkpointing) {
    // Long sequences recompute the MLP per chunk of kMlpChunkTokens: its activations exist for
    // one chunk of each sequence at a time.
    const double mlp_tokens =
        work.context_length > 2 * kMlpChunkTokens
            ? double(work.micro_batch_size) * double(work.context_length - kMlpChunkTokens)
            : 0.0;
    const double nsa_backward =
        nsa && nsa_kernels
            ? NsaKernelBackwardBytesPerToken(model) * tokens +
                  NsaDqAccumulatorBytes(model, work.nsa, work.micro_batch_size, work.context_length)
            : 0.0;
    plan.recompute =
        static_cast<int64_t>(layer + nsa_backward - mlp_tokens * MlpBytesPerToken(model, a, fused));
    plan.checkpoints = static_cast<int64_t>(checkpoints);
    plan.host_checkpoints = static_cast<int64_t>(offloaded * checkpoint);
    // What backward has made when it recomputes the last layer: the output head's gradient,
    // which the loss computes in its forward (trainer_lib/train/cross_entropy.h), the final
    // norm's, and the layer's own; an untied embedding's comes at backward's very end.
    const int64_t head = int64_t{model.vocab_size()} * model.hidden_size();
    const int64_t outside_layers =
        (model.tie_word_embeddings() ? head : 2 * head) + model.hidden_size();
    const int64_t per_layer =
        (parameters - outside_layers) / std::max<int64_t>(1, model.num_hidden_layers());
    plan.first_grads = 4 * (head + model.hidden_size() + per_layer);
  }

  // Eager: one chunk's logits in the compute dtype, their fp32 copy and its gradient. Fused
  // (trainer_lib/kernels/cross_entropy.h): the chunk's bf16 logits alone, overwritten by their
  // gradient, beside what the loss holds whatever the chunk: the head's bf16 cast and the fp32
  // gradient that cuBLAS accumulates each chunk's product into (trainer_lib/train/
  // cross_entropy.cc).
  const double chunk = std::min(tokens, double(work.loss_chunk_tokens));
  const double vocab = model.vocab_size();
  const double head = vocab * model.hidden_size();
  plan.loss = static_cast<int64_t>(fused ? chunk * vocab * a + head * (a + 4.0)
                                         : chunk * vocab * (a + 4.0 + 4.0));
  return plan;
}

double PeakMatmulFlops(absl::string_view device_name) {
  // Dense (not 2:4 sparse) bf16 tensor-core peaks of SXM parts, from NVIDIA's data sheets.
  struct Peak {
    absl::string_view name_part;
    double flops;
  };
  static constexpr Peak kPeaks[] = {
      {"H200", 989.4e12}, {"H100", 989.4e12}, {"A100", 312e12}, {"B200", 2250e12}};
  for (const Peak& peak : kPeaks) {
    if (absl::StrContains(device_name, peak.name_part)) return peak.flops;
  }
  return 0;
}

}  // namespace ablate
