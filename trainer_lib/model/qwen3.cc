#include "trainer_lib/model/qwen3.h"

#include <utility>

#include <torch/torch.h>

#include "trainer_lib/model/fused_norm.h"
#include "trainer_lib/model/fused_qkv.h"
#include "trainer_lib/model/recompute.h"

namespace ablate::train {
namespace {

torch::nn::Linear LinearNoBias(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

// The attention block of one layer: projections, per-head q/k norms, RoPE, the Attention kind
// and the output projection. Names as Hugging Face's Qwen3Attention.
class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(const v1::ModelConfig& c, std::shared_ptr<Attention> attention)
      : heads_(c.num_attention_heads()), kv_heads_(c.num_key_value_heads()), dim_(c.head_dim()) {
    const int64_t hidden = c.hidden_size();
    q_proj_ = register_module("q_proj", LinearNoBias(hidden, heads_ * dim_));
    k_proj_ = register_module("k_proj", LinearNoBias(hidden, kv_heads_ * dim_));
    v_proj_ = register_module("v_proj", LinearNoBias(hidden, kv_heads_ * dim_));
    o_proj_ = register_module("o_proj", LinearNoBias(heads_ * dim_, hidden));
    q_norm_ = register_module("q_norm", RMSNorm(dim_, c.rms_norm_eps()));
    k_norm_ = register_module("k_norm", RMSNorm(dim_, c.rms_norm_eps()));
    attention_ = register_module("attention", std::move(attention));
  }

  // x: [B, T, hidden] -> [B, T, hidden]
  torch::Tensor forward(const torch::Tensor& x, const RopeTables& rope) {
    const int64_t b = x.size(0), t = x.size(1);
    // Per-head norm, then RoPE: [B, T, H, D] -> [B, H, T, D], in the memory order the
    // attention kind reads (v is a token-major view either way).
    const RopeLayout layout =
        attention_->reads_token_major() ? RopeLayout::kTokenMajor : RopeLayout::kHeadsMajor;
    auto [q_rows, k_rows, v_rows] = QkvProjections(x, *q_proj_, *k_proj_, *v_proj_);
    torch::Tensor q =
        NormRopeForAttention(*q_norm_, q_rows.view({b, t, heads_, dim_}), rope, layout);
    torch::Tensor k =
        NormRopeForAttention(*k_norm_, k_rows.view({b, t, kv_heads_, dim_}), rope, layout);
    torch::Tensor v = v_rows.view({b, t, kv_heads_, dim_}).transpose(1, 2);
    torch::Tensor y = attention_->Forward(q, k, v, x);  // [B, H, T, D]
    // A view when y is token-major in memory; otherwise a copy, which o_proj keeps.
    return o_proj_(y.transpose(1, 2).reshape({b, t, heads_ * dim_}));
  }

 private:
  int64_t heads_, kv_heads_, dim_;
  torch::nn::Linear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr}, o_proj_{nullptr};
  RMSNorm q_norm_{nullptr}, k_norm_{nullptr};
  std::shared_ptr<Attention> attention_;
};
TORCH_MODULE(SelfAttention);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const v1::ModelConfig& c, std::shared_ptr<Attention> attention) {
    input_layernorm_ =
        register_module("input_layernorm", RMSNorm(c.hidden_size(), c.rms_norm_eps()));
    self_attn_ = register_module("self_attn", SelfAttention(c, std::move(attention)));
    post_attention_layernorm_ = register_module(
        "post_attention_layernorm", RMSNorm(c.hidden_size(), c.rms_norm_eps()));
    mlp_ = register_module("mlp", SwiGLU(c.hidden_size(), c.intermediate_size()));
  }

  // What a layer hands the next: the residual stream, and, when the caller named the next
  // norm, that norm of it as a projection reads it (else undefined).
  struct Output {
    torch::Tensor h;
    torch::Tensor next_normed;
  };

  // h = x + attn(norm1(x)); out = h + mlp(norm2(h)), the first add fused with norm2 and, with
  // `next_norm` (the next layer's norm1), the second with that norm, so that the stream is read
  // once per add and its gradient summed inside the norm's backward kernel rather than by
  // autograd's adds (about 3.6 ms a step for Qwen3-0.6B at 4,096 x 4 on an H200). `normed`,
  // when defined, is norm1(x) as the previous layer computed it. A layer that activation
  // checkpointing recomputes takes neither: its only input is the stream. With mlp_chunk > 0
  // the MLP runs per chunk of that many positions, each recomputed in backward
  // (RecomputeInBackward): its activations, the largest of the layer ([tokens, 2 I] for the
  // gate and up projections), then exist for one chunk at a time, for one more forward of the
  // MLP (the Mini-Sequence Transformer's chunked MLP, Luo et al., 2024). The MLP is per
  // position: the values are the same.
  Output forward(const torch::Tensor& x, torch::Tensor normed, const RopeTables& rope,
                 int64_t mlp_chunk, RMSNormImpl* next_norm) {
    if (!normed.defined()) normed = NormForProjection(*input_layernorm_, x);
    torch::Tensor attn = self_attn_(normed, rope);
    auto [h, mlp_in] = AddNormForProjection(*post_attention_layernorm_, x, attn);
    torch::Tensor mlp_out = Mlp(mlp_in, mlp_chunk);
    if (next_norm == nullptr) return {h + mlp_out, {}};
    auto [out, next_normed] = AddNormForProjection(*next_norm, h, mlp_out);
    return {std::move(out), std::move(next_normed)};
  }

  RMSNormImpl* input_layernorm() { return input_layernorm_.get(); }

 private:
  torch::Tensor Mlp(const torch::Tensor& normed, int64_t mlp_chunk) {
    if (mlp_chunk <= 0 || normed.size(1) <= mlp_chunk) return mlp_(normed);
    // The chunks' nodes return the MLP's weight gradients (RecomputeInBackward's params), so
    // that each weight accumulates once per backward, as gradient sync requires.
    std::vector<torch::Tensor> parts;
    SwiGLUImpl* mlp = mlp_.get();
    const std::vector<torch::Tensor> weights = mlp_->parameters();
    for (const torch::Tensor& chunk : torch::split(normed, mlp_chunk, /*dim=*/1)) {
      parts.push_back(RecomputeInBackward(
          [mlp](const torch::Tensor& in) { return mlp->forward(in); }, chunk, /*offload=*/false,
          weights));
    }
    return torch::cat(parts, /*dim=*/1);
  }

  RMSNorm input_layernorm_{nullptr}, post_attention_layernorm_{nullptr};
  SelfAttention self_attn_{nullptr};
  SwiGLU mlp_{nullptr};
};
TORCH_MODULE(DecoderLayer);

}  // namespace

Qwen3Impl::Qwen3Impl(const v1::ModelConfig& config,
                     std::vector<std::shared_ptr<Attention>> attention)
    : config_(config) {
  TORCH_CHECK(attention.size() == config.num_hidden_layers(), "Qwen3: ", attention.size(),
              " attention modules for ", config.num_hidden_layers(), " layers");
  embed_tokens_ = register_module(
      "embed_tokens", torch::nn::Embedding(config.vocab_size(), config.hidden_size()));
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (const auto& layer_attention : attention) {
    layers_->push_back(DecoderLayer(config, layer_attention));
  }
  attention_ = std::move(attention);
  norm_ = register_module("norm", RMSNorm(config.hidden_size(), config.rms_norm_eps()));
  if (!config.tie_word_embeddings()) {
    lm_head_ = register_module("lm_head", LinearNoBias(config.hidden_size(), config.vocab_size()));
  }
  // Every matrix is a linear or embedding weight; every vector a norm weight that stays at 1.
  // The 3-D tensors of NSA's learned compression keep their own initialisation (nsa.h).
  torch::NoGradGuard no_grad;
  for (torch::Tensor& p : parameters()) {
    if (p.dim() == 2) p.normal_(0.0, 0.02);
  }
}

torch::Tensor Qwen3Impl::forward(const torch::Tensor& tokens) {
  torch::Tensor h = hidden_states(tokens);
  if (lm_head_) return lm_head_(h);
  return torch::nn::functional::linear(h, embed_tokens_->weight);  // [B, T, vocab]
}

const torch::Tensor& Qwen3Impl::output_weight() const {
  return lm_head_ ? lm_head_->weight : embed_tokens_->weight;
}

torch::Tensor Qwen3Impl::hidden_states(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.scalar_type() == torch::kInt64,
              "Qwen3 expects int64 tokens of shape [B, T], got ", tokens.scalar_type(), " ",
              tokens.sizes());
  RopeTables rope = MakeRopeTables(tokens.size(1), config_.head_dim(), config_.rope_theta(),
                                   tokens.device());
  torch::Tensor h = embed_tokens_(tokens);  // [B, T, hidden]
  const bool recompute =
      activation_checkpointing_ && is_training() && torch::GradMode::is_enabled();
  const int64_t mlp_chunk =
      recompute && tokens.size(1) > 2 * mlp_chunk_tokens_ ? mlp_chunk_tokens_ : 0;
  for (const auto& attention : attention_) attention->set_recomputed(recompute);
  torch::Tensor normed;  // the next layer's norm1 of h, from the fused add (no recompute)
  for (size_t i = 0; i < layers_->size(); ++i) {
    DecoderLayerImpl* decoder = layers_[i]->as<DecoderLayer>();
    if (recompute) {
      h = RecomputeInBackward(
          [decoder, rope, mlp_chunk](const torch::Tensor& x) {
            return decoder->forward(x, {}, rope, mlp_chunk, nullptr).h;
          },
          h, static_cast<int64_t>(i) < offloaded_layers_);
    } else {
      RMSNormImpl* next_norm = i + 1 < layers_->size()
                                   ? layers_[i + 1]->as<DecoderLayer>()->input_layernorm()
                                   : nullptr;
      DecoderLayerImpl::Output out = decoder->forward(h, normed, rope, 0, next_norm);
      h = std::move(out.h);
      normed = std::move(out.next_normed);
    }
  }
  return norm_(h);
}

absl::StatusOr<Qwen3> BuildQwen3(const v1::ModelConfig& config, const std::string& attention,
                                 const NsaShape& nsa) {
  std::vector<std::shared_ptr<Attention>> per_layer;
  for (uint32_t i = 0; i < config.num_hidden_layers(); ++i) {
    absl::StatusOr<std::shared_ptr<Attention>> a = MakeAttention(attention, config, nsa);
    if (!a.ok()) return a.status();
    per_layer.push_back(*std::move(a));
  }
  return Qwen3(config, std::move(per_layer));
}

}  // namespace ablate::train
