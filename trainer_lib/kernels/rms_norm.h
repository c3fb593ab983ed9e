// CUDA kernels for RMSNorm as a bf16 consumer reads it, alone (the decoder's two norms, whose
// output feeds a projection), after the residual add that forms its input (the norm after
// attention, whose input is the fp32 residual stream plus attention's bf16 output), or fused
// with rotary position embedding (the per-head q and k norms, whose output feeds attention).
// Plain CUDA: no LibTorch here; the autograd glue is trainer_lib/model/fused_norm.h.
//
// The math is Hugging Face Qwen3's under bf16 autocast, operation for operation (every step
// rounded as eager PyTorch rounds it; no fused multiply-adds where eager has two roundings):
//   r       = 1 / sqrt(sum_c x[c]^2 / C + eps)                      fp32, per row
//   n[c]    = w[c] * round_in(x[c] * r)                             fp32; round_in rounds to
//             the input's dtype (bf16 input: to bf16; fp32 input: nothing)
//   plain:  y[c] = bf16(n[c])                                       what autocast's cast gives
//   rope:   y[c] = bf16(n[c] * cos[t][c] + rot(n)[c] * sin[t][c])   rot(n) = [-n2, n1] (halves)
//   add:    x[c] = residual[c] + fp32(delta[c]), written out as the new residual stream, then
//           plain on it: eager's fp32 + bf16 (widen exactly, one rounded add), so bit-identical
// Backward, with g the incoming gradient as fp32 (rope: g[c] = dy[c] cos[t][c] + the sin
// terms of rot's transpose):
//   dn_in[c] = round_in(g[c] * w[c]);   dw[c] += g[c] * round_in(x[c] r)
//   dx[c]    = r (dn_in[c] - x[c] r * mean_c(dn_in[c] x[c] r))
// add: dx[c] += dsum[c], the gradient x's other uses send it (autograd's sum of a tensor's
// gradients), and dx_bf16[c] = bf16(dx[c]), the gradient eager's add sends its bf16 delta.
// The row's reduction order differs from ATen's, so r (and all after it) may differ from eager
// in the last fp32 bit. dw is reduced deterministically: each of a number of thread blocks
// fixed by the shape (at most 528) sums its rows in a fixed order into its own partial row of
// the workspace, then the partials are summed column by column in block order. Rows of whole
// 16-byte vectors that fit in registers (plain: C % (16 / sizeof(x)) == 0 and C <= 1,024;
// rope: (D / 2) % 8 == 0 and D <= 1,024) with 16-byte aligned pointers take vector kernels,
// other shapes kernels that move one element at a time; both do the math above.
//
// Shapes (all contiguous):
//   plain: x [rows, C] fp32 or bf16 -> y [rows, C] bf16; any C >= 1.
//   rope:  x [B, T, H, D] bf16 -> y [B, H, T, D] bf16, or with token_major y [B, T, H, D]
//          (x's layout, which PyTorch's fused attention reads in place and gives its output
//          in, so that the output projection reads that as a view); dy in y's layout;
//          cos, sin [T, D] fp32; D even (a lane handles both elements of its pairs).
//   add:   residual [rows, C] fp32, delta [rows, C] bf16 -> sum [rows, C] fp32 and y as plain;
//          backward reads x = sum as an fp32 input; dsum [rows, C] fp32, dx_bf16 [rows, C] bf16.
// rstd: [rows] fp32, written by forward and read by backward. Indexes are 64-bit.
#ifndef ABLATE_TRAINER_LIB_KERNELS_RMS_NORM_H_
#define ABLATE_TRAINER_LIB_KERNELS_RMS_NORM_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace ablate::kernels {

enum class NormInput { kFloat32, kBFloat16 };

struct RmsNormParams {
  NormInput input = NormInput::kBFloat16;
  const void* x = nullptr;       // [rows, C] or [B, T, H, D]
  const float* weight = nullptr;  // [C]
  float eps = 1e-6f;
  int64_t rows = 0;  // B * T * H for rope
  int64_t cols = 0;  // C, or D for rope
  // Rope only: the layout's T and H, the tables, and y's layout (false: [B, H, T, D]).
  bool rope = false;
  int64_t seq_len = 0;
  int64_t heads = 0;
  bool token_major = false;
  const float* cos = nullptr;  // [T, D]
  const float* sin = nullptr;  // [T, D]
  // Add only (plain, fp32): forward normalizes residual + delta, written to sum, instead of x.
  const float* residual = nullptr;
  const void* delta = nullptr;  // bf16
  float* sum = nullptr;
  // Forward writes y and rstd; backward reads dy and rstd and writes dx and dweight.
  void* y = nullptr;            // bf16
  float* rstd = nullptr;        // [rows]
  const void* dy = nullptr;     // bf16, y's shape
  void* dx = nullptr;           // x's dtype and shape
  float* dweight = nullptr;     // [C], overwritten
  float* workspace = nullptr;   // backward: RmsNormWorkspaceFloats(rows, cols) floats
  // Backward, add only (plain, fp32 x), each optional: added to dx; dx rounded to bf16.
  const float* dsum = nullptr;
  void* dx_bf16 = nullptr;
};

// True when the kernels can take these shapes and dtypes (rope: bf16 input, D even, rows a
// multiple of T * H; add and the backward's dsum and dx_bf16: plain with fp32 input, and for
// add residual, delta and sum all set; rows, cols >= 1).
bool RmsNormSupported(const RmsNormParams& p);

// Floats of scratch the backward needs for its deterministic dweight reduction.
int64_t RmsNormWorkspaceFloats(int64_t rows, int64_t cols);

// Launch on `stream`; return the launch's error (cudaSuccess when it started).
cudaError_t RmsNormForward(const RmsNormParams& p, cudaStream_t stream);
cudaError_t RmsNormBackward(const RmsNormParams& p, cudaStream_t stream);

}  // namespace ablate::kernels

#endif  // ABLATE_TRAINER_LIB_KERNELS_RMS_NORM_H_
