// Attention's three input projections, q = x Wq^T, k = x Wk^T, v = x Wv^T (Hugging Face's
// Qwen3Attention q_proj, k_proj and v_proj, no biases), under bf16 autocast: as one autograd
// node where it applies, else the three modules eagerly. The node
//  - computes x's gradient as three GEMMs into one bf16 sum, each after the first adding in
//    cuBLAS's epilogue (beta = 1), rather than three bf16 products and autograd's two adds of
//    them, which cost Qwen3-0.6B 1.3 ms a step at 4,096 x 4 on an H200 (docs/benchmarks.md);
//  - writes the weights' gradients in fp32 from the GEMMs' fp32 accumulators, rather than in
//    bf16 that autocast's cast backward then widens in a pass of its own;
//  - keeps what eager keeps for backward: x and the weights' bf16 casts.
//
// The node applies when FusedKernelsEnabled (trainer_lib/device/fused_kernels.h: the switch
// that compares fused and eager paths on one build), x is on a CUDA device, autocast is on
// there with bf16, x is bf16 or fp32, and the weights fp32 on x's device without biases.
//
// Thread-safety: pure; as any LibTorch operation.
#ifndef ABLATE_TRAINER_LIB_MODEL_FUSED_QKV_H_
#define ABLATE_TRAINER_LIB_MODEL_FUSED_QKV_H_

#include <array>

#include <torch/nn/modules/linear.h>
#include <torch/types.h>

namespace ablate::train {

// {q(x), k(x), v(x)} for x [..., C] and q, k, v: C -> C_q, C_k, C_v without biases: each
// [..., C_*], contiguous. With the node: bf16, x's gradient in x's dtype and the weights' in
// theirs; values as autocast's linear gives them. x's gradient is rounded to bf16 three times
// (after each GEMM) where eager rounds five times for a bf16 x (three products, two adds) and
// three for an fp32 x (the products; it adds them in fp32). An output that reaches no loss
// gives its weight no gradient, as eager. Otherwise the modules' eager forward, unchanged.
std::array<torch::Tensor, 3> QkvProjections(const torch::Tensor& x, torch::nn::LinearImpl& q,
                                            torch::nn::LinearImpl& k, torch::nn::LinearImpl& v);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_MODEL_FUSED_QKV_H_
