// The pieces a Qwen3 decoder layer is built from: RMSNorm, rotary position embedding (RoPE)
// and the SwiGLU MLP. Each follows Hugging Face's Qwen3 code operation for operation (norms
// in fp32, RoPE's rotate-half layout), so that weights and logits carry over to and from it.
//
// Thread-safety: modules are used by one thread at a time; the functions are pure.
#ifndef ABLATE_TRAINER_LIB_MODEL_BLOCKS_H_
#define ABLATE_TRAINER_LIB_MODEL_BLOCKS_H_

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace ablate::train {

// y = x / sqrt(mean(x^2 over the last dim) + eps) * weight, computed in fp32 and returned in
// x's dtype. weight: [dim], initialised to ones.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  const torch::Tensor& weight() const { return weight_; }
  double eps() const { return eps_; }

 private:
  double eps_;
  torch::Tensor weight_;
};
TORCH_MODULE(RMSNorm);

// cos and sin of the rotation angles pos * theta^(-2i / head_dim) for pos in [0, length), each
// [length, head_dim] in fp32 with the half-dimension angles repeated ([f, f]).
struct RopeTables {
  torch::Tensor cos;
  torch::Tensor sin;
};
RopeTables MakeRopeTables(int64_t length, int64_t head_dim, double theta,
                          const torch::Device& device);

// Rotates x [B, H, T, D] by the tables' angles: x * cos + rotate_half(x) * sin, where
// rotate_half([x1, x2]) = [-x2, x1].
torch::Tensor ApplyRope(const torch::Tensor& x, const RopeTables& rope);

// down(silu(gate(x)) * up(x)); gate, up: hidden -> intermediate, down: intermediate -> hidden,
// all without bias. Computed by fused_swiglu.h (one node of our own under bf16 autocast on CUDA).
class SwiGLUImpl : public torch::nn::Module {
 public:
  SwiGLUImpl(int64_t hidden, int64_t intermediate);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear gate_proj_{nullptr};
  torch::nn::Linear up_proj_{nullptr};
  torch::nn::Linear down_proj_{nullptr};
};
TORCH_MODULE(SwiGLU);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_MODEL_BLOCKS_H_
