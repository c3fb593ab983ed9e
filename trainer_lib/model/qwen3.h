// A Qwen3-style decoder built from ablate::v1::ModelConfig:
//   tokens -> embedding -> N x [x += attn(rmsnorm(x)); x += swiglu(rmsnorm(x))] -> rmsnorm
//          -> lm_head (the embedding matrix itself when tie_word_embeddings).
// Attention projects q, k, v without bias, applies RMSNorm to each head of q and k (Qwen3's
// q_norm / k_norm), rotates them with RoPE and mixes them with the layer's Attention kind,
// which may share key/value heads between query heads (grouped-query attention).
//
// Parameter names follow Hugging Face's Qwen3 (embed_tokens, layers.N.self_attn.q_proj, ...,
// norm, lm_head) without its "model." prefix. Linear and embedding weights start as
// normal(0, 0.02), norm weights as ones; the caller seeds torch's generator first.
//
// Thread-safety: one thread at a time, like any torch module.
#ifndef ABLATE_TRAINER_LIB_MODEL_QWEN3_H_
#define ABLATE_TRAINER_LIB_MODEL_QWEN3_H_

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "trainer_lib/attention/attention.h"
#include "trainer_lib/model/blocks.h"

namespace ablate::train {

class Qwen3Impl : public torch::nn::Module {
 public:
  // `attention` holds one Attention per layer, config.num_hidden_layers of them.
  Qwen3Impl(const v1::ModelConfig& config, std::vector<std::shared_ptr<Attention>> attention);

  // tokens: [B, T] int64 ids below vocab_size. Returns logits [B, T, vocab_size] where
  // position t depends on tokens 0..t only.
  torch::Tensor forward(const torch::Tensor& tokens);

  // The final normed hidden states [B, T, hidden_size] that forward multiplies by
  // output_weight(), for a loss that computes the logits a chunk at a time.
  torch::Tensor hidden_states(const torch::Tensor& tokens);

  // The output head's weight [vocab_size, hidden_size]: lm_head's, or the embedding when tied.
  const torch::Tensor& output_weight() const;

  // When on, training forward passes keep only each decoder layer's input and recompute the
  // layer in backward (RecomputeInBackward): activation memory falls from every layer's
  // intermediates to one tensor per layer, for about one more forward pass of compute. The
  // first `offloaded_layers` layers keep that tensor in host memory. Sequences longer than
  // 2 mlp_chunk_tokens also recompute each layer's MLP per mlp_chunk_tokens positions in
  // backward (qwen3.cc's DecoderLayer): at 1M tokens its activations would otherwise be the
  // largest term of backward (12 GiB of gate and up projections on Qwen3-0.6B). The default,
  // kMlpChunkTokens, is the one the memory plan counts (common/model_math.h).
  void set_activation_checkpointing(bool on, int64_t offloaded_layers = 0,
                                    int64_t mlp_chunk_tokens = kMlpChunkTokens) {
    activation_checkpointing_ = on;
    offloaded_layers_ = offloaded_layers;
    mlp_chunk_tokens_ = mlp_chunk_tokens;
  }

  const v1::ModelConfig& config() const { return config_; }

 private:
  v1::ModelConfig config_;
  torch::nn::Embedding embed_tokens_{nullptr};
  torch::nn::ModuleList layers_{nullptr};
  RMSNorm norm_{nullptr};
  torch::nn::Linear lm_head_{nullptr};  // null when tied to embed_tokens_
  std::vector<std::shared_ptr<Attention>> attention_;  // each layer's, also held by the layer
  bool activation_checkpointing_ = false;
  int64_t offloaded_layers_ = 0;
  int64_t mlp_chunk_tokens_ = kMlpChunkTokens;
};
TORCH_MODULE(Qwen3);

// The model with `attention` (TrainConfig.attention, of shape `nsa` when it is "nsa") in every
// layer, initialised from torch's current generator. Fails as MakeAttention does for a kind
// that is unknown.
absl::StatusOr<Qwen3> BuildQwen3(const v1::ModelConfig& config, const std::string& attention,
                                 const NsaShape& nsa = {});

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_MODEL_QWEN3_H_
