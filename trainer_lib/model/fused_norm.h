// RMSNorm, alone, after a residual add, or followed by rotary position embedding, computed the
// way the next operation reads it under bf16 autocast: by our CUDA kernels
// (trainer_lib/kernels/rms_norm.h) where they apply, else by the eager modules of blocks.h.
// Both give the same values to the consumer; the kernels read x once, write bf16 instead of
// fp32, and keep only x and one fp32 per row for backward (eager keeps fp32 copies of x, of its
// square and of the normed result).
//
// The kernels apply when FusedKernelsEnabled (trainer_lib/device/fused_kernels.h), x is on a
// CUDA device and autocast is on there with bf16.
//
// Thread-safety: as for any torch module.
#ifndef ABLATE_TRAINER_LIB_MODEL_FUSED_NORM_H_
#define ABLATE_TRAINER_LIB_MODEL_FUSED_NORM_H_

#include <torch/types.h>

#include "trainer_lib/device/fused_kernels.h"
#include "trainer_lib/model/blocks.h"

namespace ablate::train {

// norm(x) as a projection reads it: x [..., C] fp32 or bf16. With the kernels: bf16 [..., C],
// equal to autocast's bf16 cast of norm.forward(x) but for r's last bit (kernels header).
// Otherwise norm.forward(x).
torch::Tensor NormForProjection(RMSNormImpl& norm, const torch::Tensor& x);

// The memory order of a [B, H, T, D] result: contiguous (kHeadsMajor), or a transposed view
// of a contiguous [B, T, H, D] tensor (kTokenMajor). PyTorch's fused attention reads the
// latter in place and writes its output in q's order, so that the output's transpose back to
// [B, T, H * D] for the output projection is a view rather than a copy, which the projection
// would keep for backward beside attention's own output (64 MiB a layer for Qwen3-0.6B at
// 16,384 tokens).
enum class RopeLayout { kHeadsMajor, kTokenMajor };

// RoPE(norm(x)) as attention reads it: x [B, T, H, D] (a projection's output viewed per head),
// result [B, H, T, D]. With the kernels (bf16 x, even D): bf16, in `layout`'s memory order.
// Otherwise ApplyRope(norm.forward(x).transpose(1, 2), rope), whose element-wise operations
// keep x's order: token-major, whatever `layout` says.
torch::Tensor NormRopeForAttention(RMSNormImpl& norm, const torch::Tensor& x,
                                   const RopeTables& rope, RopeLayout layout);

// The residual stream after adding a block's output, and its norm as the next projection reads
// it: residual = x + delta, normed = NormForProjection(norm, residual), for x [..., C] and
// delta of x's shape. With the kernels (x fp32, delta bf16: the stream and a projection's
// output under autocast) one kernel reads x and delta once and writes both, residual
// bit-identical to eager's x + delta; in backward one kernel sums residual's gradient with the
// norm's and gives it to x (fp32) and delta (bf16), as eager's add would. Otherwise eager
// x + delta, then NormForProjection.
struct ResidualNormed {
  torch::Tensor residual;
  torch::Tensor normed;
};
ResidualNormed AddNormForProjection(RMSNormImpl& norm, const torch::Tensor& x,
                                    const torch::Tensor& delta);

}  // namespace ablate::train

#endif  // ABLATE_TRAINER_LIB_MODEL_FUSED_NORM_H_
