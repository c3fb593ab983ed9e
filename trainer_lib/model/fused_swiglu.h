// The SwiGLU MLP, down(silu(gate(x)) * up(x)) (blocks.h SwiGLUImpl; Shazeer 2020, "GLU Variants
// Improve Transformer"; Hugging Face's Qwen3MLP), under bf16 autocast: as one autograd node of
// our own where our CUDA kernels apply, else eagerly. The node
//  - projects x through gate and up in one GEMM, against the bf16 casts of the two weights
//    stacked into one [2I, C] buffer per call (the parameters stay two tensors; eager's autocast
//    casts each weight per call as well), and, in backward, gets x's gradient from one GEMM
//    over both halves rather than two and a sum;
//  - computes silu(g) * u in one kernel (trainer_lib/kernels/swiglu.h), with both gradients in
//    one kernel in backward;
//  - writes the weights' gradients from the GEMMs' fp32 accumulators, as the fp32 weights take
//    them, rather than in bf16 that a cast then widens;
//  - keeps for backward x and the [N, 2I] projection (g and u) alone: not silu(g), nor the
//    activation y (down's input), which backward recomputes from g and u, bit for bit, for
//    down's weight gradient; nor the weights' bf16 casts, which it casts again. Backward
//    writes the activation's gradient over that projection, so it runs once per forward (as
//    every training backward here does: no retain_graph).
// Eager keeps x, g, silu(g), u, y and the three weight casts: per token and layer, 4 I bf16
// values where the node keeps 2 I (plus x in both).
//
// The node applies when FusedKernelsEnabled (trainer_lib/device/fused_kernels.h), x is on a
// CUDA device, autocast is on there with bf16, x is bf16 or fp32, the weights fp32 and the
// layers without biases.
//
// Thread-safety: pure; as any LibTorch operation.
#ifndef ABLATE_TRAINER_LIB_MODEL_FUSED_SWIGLU_H_
#define ABLATE_TRAINER_LIB_MODEL_FUSED_SWIGLU_H_

#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include "trainer_lib/device/fused_kernels.h"

namespace ablate::train {

// down(silu(gate(x)) * up(x)) for x [..., C]; gate, up: C -> I, down: I -> C', no biases.
// Returns [..., C']. With the node: bf16, and x's gradient in x's dtype, the weights' in
// theirs. Its values differ from eager's by bf16 roundings eager makes and the node does not:
// silu(g) before the product, in forward; dy * u before silu's backward, and the two halves of
// x's gradient before their sum, in backward (kernels header). Otherwise the modules' eager
// down(silu(gate(x)) * up(x)), unchanged.
torch::Tensor SwiGluMlp(const torch::Tensor& x, torch::nn::LinearImpl& gate,
                        torch::nn::LinearImpl& up, torch::nn::LinearImpl& down);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_MODEL_FUSED_SWIGLU_H_
