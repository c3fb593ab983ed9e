// The SwiGLU MLP's activation, silu(gate) * up, as down_proj reads it under bf16 autocast: by our
// CUDA kernels (trainer_lib/kernels/swiglu.h) where they apply, else eagerly. The kernels read
// gate and up once, write the product without the bf16 silu(gate) in between, and keep only
// gate and up for backward (eager keeps gate for silu's backward, and silu(gate) and up for the
// product's), whose one kernel gives both gradients.
//
// The kernels apply when FusedKernelsEnabled (trainer_lib/device/fused_kernels.h), gate is on
// a CUDA device, autocast is on there with bf16, and gate and up are bf16 of one shape.
//
// Thread-safety: pure; as any LibTorch operation.
#ifndef ABLATE_TRAINER_LIB_MODEL_FUSED_SWIGLU_H_
#define ABLATE_TRAINER_LIB_MODEL_FUSED_SWIGLU_H_

#include <torch/types.h>

#include "trainer_lib/device/fused_kernels.h"

namespace ablate::train {

// gate, up: [..., I], the gate and up projections' outputs. With the kernels: bf16 [..., I],
// the exact silu(gate) * up rounded once, which may differ from eager's twice-rounded result
// by one bf16 unit in the last place (kernels header). Otherwise torch::silu(gate) * up,
// unchanged.
torch::Tensor SwiGluActivation(const torch::Tensor& gate, const torch::Tensor& up);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_MODEL_FUSED_SWIGLU_H_
