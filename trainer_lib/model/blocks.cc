#include "trainer_lib/model/blocks.h"

#include <torch/torch.h>

#include "trainer_lib/model/fused_swiglu.h"

namespace ablate::train {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight_ = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  torch::Tensor x32 = x.to(torch::kFloat32);
  torch::Tensor normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight_ * normed.to(x.scalar_type());
}

RopeTables MakeRopeTables(int64_t length, int64_t head_dim, double theta,
                          const torch::Device& device) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  // inv_freq[i] = theta^(-2i / D) for i < D / 2, in fp32 as Hugging Face computes it.
  torch::Tensor two_i =
      torch::arange(0, head_dim, 2, f32.dtype(torch::kInt64)).to(torch::kFloat32);
  torch::Tensor inv_freq = 1.0 / torch::pow(theta, two_i / static_cast<double>(head_dim));
  torch::Tensor pos = torch::arange(length, f32);
  torch::Tensor angles = torch::outer(pos, inv_freq);            // [T, D / 2]
  torch::Tensor emb = torch::cat({angles, angles}, /*dim=*/-1);  // [T, D]
  return {emb.cos(), emb.sin()};
}

torch::Tensor ApplyRope(const torch::Tensor& x, const RopeTables& rope) {
  const int64_t half = x.size(-1) / 2;
  torch::Tensor x1 = x.narrow(-1, 0, half);
  torch::Tensor x2 = x.narrow(-1, half, half);
  torch::Tensor rotated = torch::cat({-x2, x1}, /*dim=*/-1);
  // Tables in x's dtype, as Hugging Face does, so bf16 activations stay bf16.
  return x * rope.cos.to(x.scalar_type()) + rotated * rope.sin.to(x.scalar_type());
}

SwiGLUImpl::SwiGLUImpl(int64_t hidden, int64_t intermediate) {
  auto linear = [](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
  };
  gate_proj_ = register_module("gate_proj", linear(hidden, intermediate));
  up_proj_ = register_module("up_proj", linear(hidden, intermediate));
  down_proj_ = register_module("down_proj", linear(intermediate, hidden));
}

torch::Tensor SwiGLUImpl::forward(const torch::Tensor& x) {
  return SwiGluMlp(x, *gate_proj_, *up_proj_, *down_proj_);
}

}  // namespace ablate::train
