// RMSNorm, alone or followed by rotary position embedding, computed the way the next operation
// reads it under bf16 autocast: by our CUDA kernels (trainer_lib/kernels/rms_norm.h) where they
// apply, else by the eager modules of blocks.h. Both give the same values to the consumer; the
// kernels read x once, write bf16 instead of fp32, and keep only x and one fp32 per row for
// backward (eager keeps fp32 copies of x, of its square and of the normed result).
//
// The kernels apply when this build has them (LibTorch with CUDA, and nvcc), x is on a CUDA
// device, autocast is on there with bf16, and ABLATE_FUSED_KERNELS is not "0" in the
// environment (read once: the switch for comparing the two paths on one build).
//
// Thread-safety: as for any torch module; FusedKernelsEnabled may be called from any thread.
#ifndef ABLATE_TRAINER_LIB_MODEL_FUSED_NORM_H_
#define ABLATE_TRAINER_LIB_MODEL_FUSED_NORM_H_

#include <torch/types.h>

#include "trainer_lib/model/blocks.h"

namespace ablate::train {

// True when this build has the kernels and the environment does not turn them off.
bool FusedKernelsEnabled();

// norm(x) as a projection reads it: x [..., C] fp32 or bf16. With the kernels: bf16 [..., C],
// equal to autocast's bf16 cast of norm.forward(x) but for r's last bit (kernels header).
// Otherwise norm.forward(x).
torch::Tensor NormForProjection(RMSNormImpl& norm, const torch::Tensor& x);

// RoPE(norm(x)) as attention reads it: x [B, T, H, D] (a projection's output viewed per head),
// result [B, H, T, D]. With the kernels (bf16 x, even D): bf16, contiguous. Otherwise
// ApplyRope(norm.forward(x).transpose(1, 2), rope).
torch::Tensor NormRopeForAttention(RMSNormImpl& norm, const torch::Tensor& x,
                                   const RopeTables& rope);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_MODEL_FUSED_NORM_H_
