// Causal self-attention kinds behind one interface, chosen by TrainConfig.attention.
//
// The model owns everything around the mixing step (projections, q/k norms, RoPE, the output
// projection); an Attention only mixes values: out = softmax(q k^T / sqrt(D) + causal) v, or an
// approximation of it. It also sees the hidden state q, k and v were projected from, which NSA
// turns into its gates. Each layer owns its own Attention, a torch::nn::Module, so that a kind
// with weights of its own (NSA's g_proj) registers them under the layer that uses it.
//
// Thread-safety: like any torch module, an instance is used by one thread at a time.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_ATTENTION_H_
#define ABLATE_TRAINER_LIB_ATTENTION_ATTENTION_H_

#include <memory>
#include <string>

#include <torch/nn/module.h>

#include "ablate/v1/config.pb.h"
#include "absl/status/statusor.h"
#include "common/model_math.h"

namespace ablate::train {

class Attention : public torch::nn::Module {
 public:
  // q: [B, H, T, D]; k, v: [B, H_kv, T, D] with H a multiple of H_kv (grouped-query attention:
  // query head h reads key/value head h / (H / H_kv)); hidden: [B, T, hidden_size], the
  // layer's normed input that q, k and v were projected from. Returns [B, H, T, D], where
  // position t sees positions 0..t only. Checks q, k and v's shapes once here, for every kind.
  torch::Tensor Forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& hidden);

  // Called by the model before each training forward (Qwen3Impl::hidden_states): `on` when
  // activation checkpointing runs each layer twice, first without autograd, then again in
  // backward. A kind may keep from the first run what the second can reuse, in the order the
  // runs come (a layer's forward runs before its backward); each call drops what was kept.
  // Default: nothing kept.
  virtual void set_recomputed(bool on) {}

  // True when the kind reads q and k fastest as [B, T, H, D] memory viewed as [B, H, T, D]
  // (PyTorch's fused attention, which then writes its output in that order too), false when
  // it reads them contiguous in [B, H, T, D] (NSA's kernels). The values are the same.
  virtual bool reads_token_major() const { return false; }

 protected:
  // Called with q, k and v's shapes already checked.
  virtual torch::Tensor Compute(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const torch::Tensor& hidden) = 0;
};

// A fresh Attention of the named kind for a layer of `model`: "dense" (PyTorch's fused
// scaled-dot-product attention) or "nsa" (NsaAttention, trainer_lib/attention/nsa.h, of shape
// `nsa`, which common/attention_args' NsaShapeOf reads from a validated TrainConfig).
// InvalidArgument for a name no trainer knows.
absl::StatusOr<std::shared_ptr<Attention>> MakeAttention(const std::string& kind,
                                                         const v1::ModelConfig& model,
                                                         const NsaShape& nsa = {});

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_ATTENTION_H_
