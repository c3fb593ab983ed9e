// Causal self-attention kinds behind one interface, chosen by TrainConfig.attention.
//
// The model owns everything around the mixing step (projections, q/k norms, RoPE, the output
// projection); an Attention only mixes values: out = softmax(q k^T / sqrt(D) + causal) v, or an
// approximation of it. Each layer owns its own Attention, a torch::nn::Module, so that a kind
// with weights of its own registers them under the layer that uses it.
//
// Thread-safety: like any torch module, an instance is used by one thread at a time.
#ifndef ABLATE_TRAINER_LIB_ATTENTION_ATTENTION_H_
#define ABLATE_TRAINER_LIB_ATTENTION_ATTENTION_H_

#include <memory>
#include <string>

#include <torch/nn/module.h>

#include "absl/status/statusor.h"

namespace ablate::train {

class Attention : public torch::nn::Module {
 public:
  // q: [B, H, T, D]; k, v: [B, H_kv, T, D] with H a multiple of H_kv (grouped-query attention:
  // query head h reads key/value head h / (H / H_kv)). Returns [B, H, T, D], where position t
  // sees positions 0..t only. Checks the shapes once here, for every kind.
  torch::Tensor Forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

 protected:
  // Called with shapes already checked.
  virtual torch::Tensor Compute(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v) = 0;
};

// A fresh Attention of the named kind: "dense" (PyTorch's fused scaled-dot-product attention).
// Unimplemented for "nsa", not built yet; InvalidArgument for a name no trainer knows.
absl::StatusOr<std::shared_ptr<Attention>> MakeAttention(const std::string& kind);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_ATTENTION_ATTENTION_H_
